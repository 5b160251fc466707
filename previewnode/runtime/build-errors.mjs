// Build errors as a code generator can act on them: a workspace-relative file, a 1-based
// line and column, and a message with no ANSI colours and no node path in it.
//
// Pure (no Vite, no fs of its own: the caller passes `readSource`), so that the table in
// tests/unit/test_build_errors.py can run every error shape Vite and its plugins emit
// through it. The shapes, as seen from Vite 8:
// - import analysis and PostCSS: `loc` {file, line (1-based), column (0-based)};
// - oxc/rolldown parse errors: a generic "Transform failed" message, the details in
//   `errors[]`, each with its own `loc`;
// - the same error as Vite sends it to browsers (`{type: "error", err}`): `errors[]` is
//   dropped, the place survives only inside the message's diagnostic (`╭─[ src/a.jsx:3:1 ]`);
// - Tailwind's resolver: "Can't resolve './x.css' in '/abs/dir'", no place at all: the
//   line is where the source names the specifier.

import path from "node:path";

export function stripVT(text) {
  return String(text).replace(/\u001b\[[0-9;?]*[ -/]*[@-~]/g, "");
}

// `file` (absolute, root-relative, or with a query) as a workspace path, or null when it
// is outside the workspace or inside a dependency.
export function workspacePath(root, file) {
  if (!file) return null;
  const clean = String(file).split("?")[0];
  const abs = path.isAbsolute(clean) ? clean : path.resolve(root, clean.replace(/^\//, ""));
  const rel = path.relative(root, abs);
  if (!rel || rel.startsWith("..") || path.isAbsolute(rel)) return null;
  if (rel.split(path.sep).includes("node_modules")) return null;
  return rel.split(path.sep).join("/");
}

// The node's own paths never reach a client: the workspace prefix is cut, so messages
// name files as the upload did.
export function withoutRoot(root, text) {
  return String(text).split(`${root}/`).join("").split(root).join(".");
}

// A diagnostic's "path:line:col" (oxc's `[ src/a.jsx:3:1 ]`, PostCSS's "/abs/a.css:3:1:"),
// both 1-based, as {file, line, column}; null when the message names no place.
export function placeInMessage(message) {
  const text = stripVT(message);
  const m =
    /\[\s*([^\s\]]+?):(\d+):(\d+)\s*\]/.exec(text) ?? /([^\s'"`()]+?):(\d+):(\d+)/.exec(text);
  return m ? { file: m[1], line: Number(m[2]), column: Number(m[3]) } : null;
}

const UNRESOLVED = [
  /Can't resolve '([^']+)'/,
  /Failed to resolve import "([^"]+)"/,
  /Could not resolve "([^"]+)"/,
  /Cannot find module '([^']+)'/,
];

// The 1-based line and column where `source` names `specifier` in quotes, or null.
export function locateSpecifier(source, specifier) {
  if (typeof source !== "string" || !specifier) return null;
  const lines = source.split("\n");
  for (let i = 0; i < lines.length; i++) {
    for (const quote of ['"', "'", "`"]) {
      const at = lines[i].indexOf(`${quote}${specifier}${quote}`);
      if (at >= 0) return { line: i + 1, column: at + 1 };
    }
  }
  return null;
}

const firstLine = (text) => stripVT(text).trim().split("\n")[0];

// One Vite error as {file, line, column, message}, or null when it belongs to no
// workspace file (then the caller has nothing to pin it on). `fallback` is the file
// being transformed when the error does not say; `readSource(rel)` returns its text.
export function describe(err, { root, fallback = null, readSource = () => null }) {
  const inner = Array.isArray(err?.errors) && err.errors.length ? err.errors : null;
  const rawMessage = inner
    ? inner.map((e) => firstLine(e?.message ?? e)).join("\n")
    : stripVT(err?.message ?? String(err)).trim();
  const loc = err?.loc ?? inner?.[0]?.loc ?? null;
  const said = loc ? null : placeInMessage(inner?.[0]?.message ?? err?.message ?? "");
  const file =
    workspacePath(root, loc?.file) ??
    workspacePath(root, said?.file) ??
    workspacePath(root, err?.id) ??
    fallback;
  if (!file) return null;
  let line = 0;
  let column = 0;
  if (loc && Number.isInteger(loc.line) && loc.line > 0) {
    line = loc.line;
    column = Number.isInteger(loc.column) ? loc.column + 1 : 1; // Vite's column is 0-based
  } else if (said && workspacePath(root, said.file) === file) {
    line = said.line;
    column = said.column;
  } else {
    const specifier = UNRESOLVED.map((re) => re.exec(rawMessage)?.[1]).find(Boolean);
    const found = specifier ? locateSpecifier(readSource(file), specifier) : null;
    if (found) ({ line, column } = found);
  }
  // Nothing better known: the file's first line, so the place is always a real one.
  if (line < 1) [line, column] = [1, 1];
  return { file, line, column, message: withoutRoot(root, rawMessage) };
}

// The preview platform's page client, added to every preview's HTML by the launcher
// (the module /@id/__x00__preview-client). Framework-agnostic, no dependencies, loaded
// before the app's own modules. It tells two listeners what a human would see:
// - the node, over Vite's own HMR socket (event "preview:report"): uncaught errors,
//   unhandled rejections, console.error/console.warn, and HMR updates applied. The
//   launcher maps positions back to the uploaded files through the modules' source maps;
// - a generator UI framing the preview, by window.parent.postMessage, messages of the
//   shape {source: "kontext-preview", type, ...}: "error" {kind, message, stack},
//   "route" {path}, "update-applied" {paths}.
// Bounded: at most 20 reports in any 10 s, each message cut at 2,000 characters.

performance.mark("preview-client:start");
const hot = import.meta.hot;
const MAX_TEXT = 2000;
const WINDOW_MS = 10000;
const MAX_PER_WINDOW = 20;
let sentAt = [];

const cut = (text) => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text);

function describe(value) {
  if (value instanceof Error) return value.message || String(value);
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function toParent(message) {
  if (window.parent === window) return;
  try {
    window.parent.postMessage({ source: "kontext-preview", ...message }, "*");
  } catch {
    // a parent that can't be posted to is no reason to break the page
  }
}

function report(kind, message, stack) {
  const now = Date.now();
  sentAt = sentAt.filter((t) => now - t < WINDOW_MS);
  if (sentAt.length >= MAX_PER_WINDOW) return;
  sentAt.push(now);
  const payload = { kind, message: cut(message), stack: cut(stack || "") };
  hot?.send("preview:report", payload);
  toParent({ type: "error", ...payload });
}

window.addEventListener("error", (event) => {
  const err = event.error;
  const where = event.filename ? `\n    at ${event.filename}:${event.lineno}:${event.colno}` : "";
  report("error", describe(err ?? event.message), err?.stack || `${event.message}${where}`);
});

window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason;
  report("unhandledrejection", describe(reason), reason?.stack || "");
});

for (const level of ["error", "warn"]) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    original(...args);
    const err = args.find((a) => a instanceof Error);
    // the caller's frame: an Error made here, its first line dropped (this wrapper)
    const stack = err?.stack || (new Error().stack || "").split("\n").slice(2).join("\n");
    report(`console.${level}`, args.map(describe).join(" "), stack);
  };
}

const route = () => toParent({ type: "route", path: location.pathname + location.search + location.hash });
for (const method of ["pushState", "replaceState"]) {
  const original = history[method].bind(history);
  history[method] = (...args) => {
    const result = original(...args);
    route();
    return result;
  };
}
window.addEventListener("popstate", route);
window.addEventListener("hashchange", route);
route();

hot?.on("vite:afterUpdate", (payload) => {
  const paths = (payload?.updates ?? []).map((u) => u.path);
  hot.send("preview:report", { kind: "update-applied", paths });
  toParent({ type: "update-applied", paths });
});

performance.measure("preview-client", "preview-client:start");

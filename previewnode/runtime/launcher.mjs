// Starts one Vite dev server for one preview session.
//
// Usage: node launcher.mjs [--warm], with the JSON config as the first line of stdin:
//   {"root", "base", "port", "allowedHosts", "clientPort", "clientProtocol",
//    "nodeModules", "cacheDir", "listenFd", "ownConfig", "bundleConfigBeside"}
//
// The session's files are untrusted. Sandboxed ("ownConfig"), the app's own config runs,
// with the platform's settings merged last; the sandbox is the guard. Unsandboxed, this
// launcher never loads a config file from the workspace (vite.config.*, postcss.config.*,
// tailwind.config.*), reads tsconfig/jsconfig `paths` as JSON data only, and serves
// nothing outside the workspace and its dependency tree. stdout carries only JSON lines
// for the supervisor (previewnode/devserver.py):
//   {"event":"waiting"} (imports done, reading the config line)
//   {"event":"ready","port":N} or {"event":"ready","fd":N} (serving on the listener passed in)
//   {"event":"errors","errors":[{"file","line","column","message"}]}
//   {"event":"hmr","type":"update"|"full-reload"|"applied","paths":["src/App.jsx"]}
//   {"event":"runtime-error","kind","message","file","line","column","stack"}
// Everything else Vite or a plugin prints goes to stderr. The process exits when stdin
// reaches EOF (its supervisor is gone) and closes the server on SIGTERM. stdin carries
// the node's change notices (see "change notices" below).

import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { syncBuiltinESMExports } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import readline from "node:readline";
import v8 from "node:v8";
import vm from "node:vm";

import { originalPositionFor, TraceMap } from "@jridgewell/trace-mapping";

import { describe, stripVT, withoutRoot, workspacePath } from "./build-errors.mjs";

// Keep a private handle on stdout and point every other writer at stderr, so that no
// plugin or library can ever corrupt the JSON-lines channel.
const writeOut = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);
for (const level of ["log", "info", "debug"]) {
  console[level] = console.error;
}

function emit(message) {
  writeOut(`${JSON.stringify(message)}\n`);
}

// A file's identity and content stamp (null: not a regular file, or gone): what tells a
// later state of a path from an earlier one, an atomic replace included.
function fileState(abs) {
  try {
    const st = fs.statSync(abs);
    return st.isFile() ? `${st.ino}:${st.mtimeMs}:${st.size}` : null;
  } catch {
    return null;
  }
}

const stderrLogger = (() => {
  const warned = new Set();
  const write = (msg) => process.stderr.write(`${stripVT(msg)}\n`);
  const logger = {
    hasWarned: false,
    hasErrorLogged: () => false,
    clearScreen() {},
    info: (msg) => write(msg),
    warn: (msg) => {
      logger.hasWarned = true;
      write(msg);
    },
    warnOnce: (msg) => {
      if (warned.has(msg)) return;
      warned.add(msg);
      logger.warn(msg);
    },
    error: (msg) => write(msg),
  };
  return logger;
})();

// ---- configuration --------------------------------------------------------------------

// The configuration is the first line of stdin, never argv: a CLI module an upload got
// loaded would read argv as file names to run, and an upload can create files.
function parseConfig(raw) {
  if (!raw) throw new Error("usage: node launcher.mjs, the JSON config as stdin's first line");
  const c = JSON.parse(raw);
  const need = (key, type) => {
    if (typeof c[key] !== type) throw new Error(`config.${key} must be a ${type}`);
    return c[key];
  };
  const root = fs.realpathSync(need("root", "string"));
  const base = need("base", "string");
  if (!base.startsWith("/") || !base.endsWith("/")) throw new Error("config.base must be /.../");
  const allowedHosts = c.allowedHosts;
  if (!Array.isArray(allowedHosts) || !allowedHosts.every((h) => typeof h === "string")) {
    throw new Error("config.allowedHosts must be a list of host names");
  }
  const clientProtocol = need("clientProtocol", "string");
  if (clientProtocol !== "ws" && clientProtocol !== "wss") {
    throw new Error("config.clientProtocol must be ws or wss");
  }
  return {
    root,
    base,
    port: need("port", "number"),
    allowedHosts,
    clientPort: need("clientPort", "number"),
    clientProtocol,
    nodeModules: fs.realpathSync(need("nodeModules", "string")),
    cacheDir: need("cacheDir", "string"),
    // Inside the sandbox: the app's own config runs, and the listener is a unix socket
    // passed in (the sandbox has no network the node could reach).
    ownConfig: c.ownConfig === true,
    listenFd: Number.isInteger(c.listenFd) && c.listenFd >= 0 ? c.listenFd : null,
    bundleConfigBeside: c.bundleConfigBeside === true,
  };
}

// Vite 6+ bundles a TS config into the nearest node_modules' `.vite-temp`, which is the
// dependency set, shared by every session on it: bubblewrap mounts a private tmpfs there,
// Landlock cannot (and must not let one session write where another's config is loaded
// from). Vite writes beside the config, in the workspace, when making that directory
// fails with EACCES: it does here.
function bundleConfigBeside(root) {
  const shared = path.join(root, "node_modules", ".vite-temp");
  const mkdir = fs.promises.mkdir;
  fs.promises.mkdir = function (dir, ...rest) {
    if (typeof dir === "string" && path.resolve(dir) === shared) {
      const err = new Error(`EACCES: ${shared} is shared`);
      err.code = "EACCES";
      return Promise.reject(err);
    }
    return mkdir.call(this, dir, ...rest);
  };
}

const CONFIG_FILES = ["vite.config.js", "vite.config.mjs", "vite.config.ts", "vite.config.mts",
  "vite.config.cjs", "vite.config.cts"];

function appConfigFile(root) {
  for (const name of CONFIG_FILES) {
    const file = path.join(root, name);
    if (fs.existsSync(file)) return file;
  }
  return null;
}

// ---- which Vite -----------------------------------------------------------------------

// An app config (sandboxed only) runs on the app's own Vite when its dependency tree has
// one: the config and its plugins were written for that major. The fixed config (always
// unsandboxed, and sandboxed when the app has no config) runs on the runtime's Vite, the
// one its plugins are built for. Returns {createServer, major}.
async function loadVite(cfg, appConfig) {
  const pkgFile = path.join(cfg.nodeModules, "vite", "package.json");
  if (!appConfig || !fs.existsSync(pkgFile)) {
    const { vite } = await runtime();
    return { createServer: vite.createServer, major: majorOf(vite.version) };
  }
  // pnpm links node_modules/vite into node_modules/.pnpm/...: its package.json and entry
  // are read where they really are (the module the app's config gets for "vite").
  const dir = fs.realpathSync(path.dirname(pkgFile));
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  const exp = pkg.exports;
  const dot = typeof exp === "object" && exp !== null && "." in exp ? exp["."] : exp;
  const entry = exportTarget(dot) ?? pkg.module ?? pkg.main;
  if (typeof entry !== "string") throw new Error(`${dir}/package.json names no ESM entry`);
  const vite = await import(pathToFileURL(path.join(dir, entry)).href);
  stderrLogger.info(`running on the app's own vite ${pkg.version}`);
  return { createServer: vite.createServer, major: majorOf(vite.version ?? pkg.version) };
}

// The file an `exports` entry points an ESM `import` at: a string, or the first of the
// conditions import, node, default (nested condition objects followed), else null.
function exportTarget(entry) {
  if (typeof entry === "string") return entry;
  if (!entry || typeof entry !== "object" || Array.isArray(entry)) return null;
  for (const condition of ["import", "node", "default"]) {
    const target = exportTarget(entry[condition]);
    if (target) return target;
  }
  return null;
}

const majorOf = (version) => Number.parseInt(String(version), 10) || 0;

// The runtime's Vite and the fixed config's plugins, imported only when this dev server
// needs them: an app with its own config on its own Vite never does (their import was
// ~250 ms of its start here). A warm launcher (`--warm`, previewnode/warm.py) imports them
// before it says it is waiting, for the session on the runtime it is handed next.
let runtimeModules = null;
function runtime() {
  runtimeModules ??= Promise.all([
    import("vite"),
    import("@vitejs/plugin-react"),
    import("@tailwindcss/vite"),
  ]).then(([vite, react, tailwindcss]) => ({
    vite,
    react: react.default,
    tailwindcss: tailwindcss.default,
  }));
  return runtimeModules;
}

// The client's module graph, HMR channel and transform on any Vite from 5 on. Vite 6+
// has them on `server.environments.client`; Vite 5 on the server itself (`server.hot`
// from 5.1 on, before it only `server.ws`), with the same module graph API.
function clientEnv(server) {
  const env = server.environments?.client;
  if (env) return env;
  return {
    moduleGraph: server.moduleGraph,
    hot: server.hot ?? server.ws,
    transformRequest: (url) => server.transformRequest(url),
  };
}

// The node reaches a sandboxed dev server only through this unix socket, which the node
// bound and passed in as descriptor `fd` (it is in no directory this sandbox sees): each
// connection is piped to Vite on the sandbox's own loopback.
function bridge(fd, port) {
  return new Promise((resolve, reject) => {
    const server = net.createServer((client) => {
      const upstream = net.connect(port, "127.0.0.1");
      client.pipe(upstream);
      upstream.pipe(client);
      const close = () => { client.destroy(); upstream.destroy(); };
      client.on("error", close);
      upstream.on("error", close);
      client.on("close", close);
      upstream.on("close", close);
    });
    server.on("error", reject);
    server.listen({ fd }, () => resolve(server));
  });
}

// JSON with comments and trailing commas (what tsconfig.json allows), parsed as data.
function parseJsonc(text) {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (ch === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (ch === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end === -1 ? text.length : end + 2;
    } else {
      out += ch;
      i++;
    }
  }
  return JSON.parse(out.replace(/,(\s*[}\]])/g, "$1"));
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function inside(dir, target) {
  const rel = path.relative(dir, target);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

// `compilerOptions.paths` of an uploaded tsconfig.json/jsconfig.json as Vite aliases.
// Only the first target of each entry is used; targets outside the workspace and the
// catch-all "*" pattern (which would swallow every bare import) are skipped.
function aliasesFromTsconfig(root) {
  for (const name of ["tsconfig.json", "jsconfig.json"]) {
    const file = path.join(root, name);
    let data;
    try {
      data = parseJsonc(fs.readFileSync(file, "utf8"));
    } catch (err) {
      if (err.code !== "ENOENT") stderrLogger.warn(`ignoring ${name}: ${err.message}`);
      continue;
    }
    const options = data?.compilerOptions;
    const paths = options?.paths;
    if (!paths || typeof paths !== "object") return [];
    const baseDir = path.resolve(
      root,
      typeof options.baseUrl === "string" ? options.baseUrl : ".",
    );
    const aliases = [];
    for (const [pattern, targets] of Object.entries(paths)) {
      if (!Array.isArray(targets) || typeof targets[0] !== "string") continue;
      if (pattern === "*" || pattern.split("*").length > 2) continue;
      const target = targets[0];
      if (pattern.endsWith("*") && target.endsWith("*")) {
        const dir = path.resolve(baseDir, target.slice(0, -1));
        if (!inside(root, dir)) continue;
        const prefix = pattern.slice(0, -1);
        const sep = target.slice(0, -1).endsWith("/") && !dir.endsWith("/") ? "/" : "";
        aliases.push({
          find: new RegExp(`^${escapeRegExp(prefix)}(.+)$`),
          replacement: `${dir}${sep}$1`,
        });
      } else if (!pattern.includes("*") && !target.includes("*")) {
        const dest = path.resolve(baseDir, target);
        if (!inside(root, dest)) continue;
        aliases.push({ find: new RegExp(`^${escapeRegExp(pattern)}$`), replacement: dest });
      }
    }
    return aliases;
  }
  return [];
}

// A free port on 127.0.0.1, chosen once: Vite's restart (after an uploaded .env changes)
// listens again on the configured port, which must stay the one the node knows.
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

// Unsandboxed, Tailwind is the one part of the fixed config that reads what an upload
// names: `@import` stylesheets and `@plugin`/`@config` JavaScript. @tailwindcss/node asks
// `globalThis.__tw_resolve(id, base)` before resolving either, and `globalThis.__tw_load`
// before importing a module. Resolution is checked by path: a relative or absolute
// specifier must stay in the workspace, a package one may not climb out with `..`; and
// no JavaScript is imported at all (any module in reach, the runtime's own CLIs
// included, would run on the node). Sandboxed, the app's own Tailwind runs unguarded.
function guardTailwind(root) {
  globalThis.__tw_resolve = (id, base) => {
    const spec = String(id).split(/[?#]/)[0];
    let escapes;
    if (spec.startsWith("file:")) escapes = !inside(root, path.resolve(new URL(spec).pathname));
    else if (/^[a-z][a-z0-9+.-]*:/i.test(spec)) escapes = true; // nothing is fetched
    else if (/^[./]/.test(spec)) escapes = !inside(root, path.resolve(base ?? root, spec));
    else escapes = spec.split(/[\\/]/).includes(".."); // a package may not climb out
    if (escapes) throw new Error("an @import or @plugin outside the project is not allowed");
    return undefined; // Tailwind resolves it as usual
  };
  globalThis.__tw_load = async () => {
    throw new Error(
      "Tailwind @plugin and @config (JavaScript) are not supported in previews; use CSS-only configuration (@theme, @utility, @custom-variant)",
    );
  };
}

// Unsandboxed, this process is the node's: whatever an upload makes Vite read could end
// up in a response or a build error (a CSS `@import` of any path, `url()` forms included,
// is read and parsed by Vite's own CSS pipeline; a glob lists directories). So its file
// system is narrowed by resolved path: reads and directory listings outside the allowed
// trees (the workspace, its dependency set, the runtime, Vite's cache) fail as if the
// file did not exist. Node's module loader does not use these functions, so imports of
// the runtime are unaffected; sandboxed, the sandbox does this for real.
function narrowFileSystem(allowed) {
  const roots = allowed.map((p) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  });
  const permitted = (target) => {
    if (typeof target !== "string" && !(target instanceof URL) && !Buffer.isBuffer(target)) {
      return true; // a file descriptor: opened through a checked call
    }
    let file = target instanceof URL ? target.pathname : String(target);
    file = path.resolve(file);
    try {
      file = fs.realpathSync.native(file);
    } catch {
      // not there (yet): judged by its lexical path
    }
    return roots.some((r) => inside(r, file));
  };
  const absent = (target) => {
    const err = new Error(`ENOENT: no such file or directory, open '${target}'`);
    err.code = "ENOENT";
    err.errno = -2;
    return err;
  };
  const wrapSync = (obj, name) => {
    const original = obj[name];
    obj[name] = function (target, ...rest) {
      if (!permitted(target)) throw absent("outside the project");
      return original.call(this, target, ...rest);
    };
  };
  const wrapCallback = (obj, name) => {
    const original = obj[name];
    obj[name] = function (target, ...rest) {
      if (!permitted(target)) {
        const cb = rest.findLast((a) => typeof a === "function");
        if (cb) process.nextTick(cb, absent("outside the project"));
        return undefined;
      }
      return original.call(this, target, ...rest);
    };
  };
  const wrapPromise = (obj, name) => {
    const original = obj[name];
    obj[name] = function (target, ...rest) {
      if (!permitted(target)) return Promise.reject(absent("outside the project"));
      return original.call(this, target, ...rest);
    };
  };
  for (const name of ["readFileSync", "readdirSync", "opendirSync", "openSync"]) wrapSync(fs, name);
  for (const name of ["readFile", "readdir", "opendir", "open"]) wrapCallback(fs, name);
  for (const name of ["readFile", "readdir", "opendir", "open"]) wrapPromise(fs.promises, name);
  const stream = fs.createReadStream;
  fs.createReadStream = function (target, ...rest) {
    if (!permitted(target)) throw absent("outside the project");
    return stream.call(this, target, ...rest);
  };
  syncBuiltinESMExports(); // `import { readdir } from "node:fs"` in Vite's bundle too
}

// `import.meta.glob` runs on the server and writes the matched file names into the
// module: a pattern leaving the workspace would list the node's directories (other
// sessions' IDs among them) even though fs.strict refuses to serve the files. Modules
// that glob are checked for path-like string literals that resolve outside the root.
function globGuard(root) {
  const literal = /(["'`])((?:\\.|(?!\1)[^\\\n])*)\1/g;
  const escapes = (pattern, importer) => {
    const p = pattern.replace(/^!/, "");
    let dir;
    if (p.startsWith("/")) dir = root;
    else if (p.startsWith("./") || p.startsWith("../")) dir = path.dirname(importer);
    else if (p.startsWith("@/")) return escapes(`/src/${p.slice(2)}`, importer);
    else return false;
    const magic = p.search(/[*?[\]{}()!]/);
    const staticPart = magic === -1 ? p : p.slice(0, magic);
    if (magic !== -1 && p.slice(magic).includes("..")) return true;
    return !inside(root, path.join(dir, p.startsWith("/") ? `.${staticPart}` : staticPart));
  };
  return {
    name: "preview:glob-guard",
    enforce: "pre",
    transform(code, id) {
      if (!code.includes("import.meta.glob")) return;
      const importer = id.split("?")[0];
      for (const match of code.matchAll(literal)) {
        if (escapes(match[2], importer)) {
          throw new Error(`import.meta.glob pattern ${match[0]} reaches outside the project`);
        }
      }
    },
  };
}

// ---- build errors ---------------------------------------------------------------------

// The current build errors, one per workspace file, as Vite reports them: the errors it
// sends to browsers ({type: "error"}) plus our own re-transform of every changed module,
// so that a client with no browser open still learns that its edit broke the build.
function errorTracker(root, major) {
  const errors = new Map();
  let published = "[]";
  let server = null;
  let pending = new Set();
  let created = false; // a file of the pending batch was added or deleted
  let timer = null;
  let running = Promise.resolve();

  const relative = (file) => workspacePath(root, file);

  const isModuleFile = (abs) => {
    if (abs.endsWith(".html")) return false;
    try {
      return fs.statSync(abs).isFile();
    } catch {
      return false;
    }
  };

  // Where the error is, in the upload's terms (build-errors.mjs has the shapes).
  const readSource = (rel) => {
    try {
      const abs = path.join(root, rel);
      return fs.lstatSync(abs).isFile() ? fs.readFileSync(abs, "utf8") : null;
    } catch {
      return null;
    }
  };
  const fromViteError = (err, fallback) => {
    try {
      return describe(err, { root, fallback, readSource });
    } catch (e) {
      stderrLogger.error(`describing a build error failed: ${e?.stack ?? e}`);
      return fallback ? { file: fallback, line: 1, column: 1, message: "build error" } : null;
    }
  };

  const publish = () => {
    const list = [...errors.values()].sort((a, b) => a.file.localeCompare(b.file));
    const text = JSON.stringify(list);
    if (text !== published) {
      published = text;
      emit({ event: "errors", errors: list });
    }
  };

  // Which state of its file each error was seen in. An error stays while its file is
  // unchanged, unless files came or went (a missing import may now resolve). Tailwind's
  // plugin keeps the last good compiler after a failed compile, so compiling an unchanged
  // broken stylesheet again (any source edit triggers that) "succeeds" with the old CSS:
  // a stylesheet's error stays until the stylesheet itself changes.
  const seenIn = new Map();
  let structural = true; // the current batch added or deleted files (true: no batch yet)
  let checked = new Set(); // what the current batch has checked
  const record = (e) => {
    errors.set(e.file, e);
    seenIn.set(e.file, fileState(path.join(root, e.file)));
  };

  // Transform one workspace module the way a browser request would; a module that was
  // never requested is skipped (Vite would not report it either).
  const check = async (env, rel) => {
    const abs = path.join(root, rel);
    if (checked.has(rel)) return; // once per batch: a second transform may "succeed"
    checked.add(rel);
    const sticky = !structural || /\.(css|scss|sass|less|styl|pcss|postcss)$/i.test(rel);
    if (sticky && errors.has(rel) && seenIn.get(rel) === fileState(abs)) return;
    if (!isModuleFile(abs)) {
      // A deleted file has no errors of its own (its importers are checked instead);
      // html and tailwind's watched globs are graph nodes but not modules.
      errors.delete(rel);
      return;
    }
    const mods = env.moduleGraph.getModulesByFile(abs);
    const urls = mods?.size ? [...mods].map((m) => m.url) : errors.has(rel) ? [`/${rel}`] : [];
    for (const url of urls) {
      try {
        await env.transformRequest(url);
        errors.delete(rel);
      } catch (err) {
        const e = fromViteError(err, rel);
        errors.delete(rel);
        if (e) record(e);
        return;
      }
    }
  };

  // Workspace-relative paths of index.html's module scripts.
  const entryFiles = () => {
    let html;
    try {
      html = fs.readFileSync(path.join(root, "index.html"), "utf8");
    } catch {
      return [];
    }
    const files = [];
    const re = /<script\b[^>]*\btype\s*=\s*["']module["'][^>]*>/gi;
    for (const tag of html.match(re) ?? []) {
      const src = /\bsrc\s*=\s*["']([^"']+)["']/i.exec(tag)?.[1];
      if (src && !/^[a-z]+:|^\/\//i.test(src)) {
        const rel = relative(path.join(root, src.split(/[?#]/)[0]));
        if (rel) files.push(rel);
      }
    }
    return files;
  };

  // Walk the workspace's module graph from index.html's entries, so errors are known
  // before any browser asks (and the first page finds its modules transformed). After
  // an edit (`fresh`), modules already transformed are only walked through: what is
  // new is what an edit made reachable (a new import), which no watcher event names.
  const crawl = async (env, fresh = false) => {
    const seen = new Set();
    const queue = [];
    queue.push(...entryFiles());
    while (queue.length && seen.size < 2000) {
      const rel = queue.shift();
      if (seen.has(rel)) continue;
      seen.add(rel);
      const abs = path.join(root, rel);
      if (!env.moduleGraph.getModulesByFile(abs)?.size) {
        try {
          await env.transformRequest(`/${rel}`);
          errors.delete(rel);
        } catch (err) {
          const e = fromViteError(err, rel);
          if (e) record(e);
        }
      } else if (
        !fresh ||
        [...env.moduleGraph.getModulesByFile(abs)].some((m) => !m.transformResult)
      ) {
        await check(env, rel);
      }
      for (const mod of env.moduleGraph.getModulesByFile(abs) ?? []) {
        for (const dep of mod.importedModules) {
          const depRel = relative(dep.file);
          if (depRel && !seen.has(depRel) && isModuleFile(dep.file)) queue.push(depRel);
        }
      }
    }
  };

  const run = (job) => {
    running = running.then(job).then(publish, (err) => {
      stderrLogger.error(`error check failed: ${err?.stack ?? err}`);
    });
    return running;
  };

  const flush = () => {
    timer = null;
    const files = pending;
    const added = created;
    pending = new Set();
    created = false;
    run(async () => {
      if (!server) return;
      structural = added;
      checked = new Set();
      const env = clientEnv(server);
      if (files.has("index.html")) {
        await crawl(env);
        files.delete("index.html");
      }
      for (const rel of new Set([...files, ...errors.keys()])) await check(env, rel);
      await crawl(env, true);
    });
  };

  // A workspace file was created, updated or deleted (as Vite's `hotUpdate` hook says it,
  // called once Vite has invalidated the file's modules); the check runs once Vite's
  // update went out.
  const fileChanged = (env, { type, file, modules }) => {
    const rel = relative(file);
    if (!rel) return;
    pending.add(rel);
    if (type !== "update") created = true;
    if (type === "delete") {
      // Importers of a deleted file fail to resolve it; make them transform again.
      for (const mod of modules) {
        for (const importer of mod.importers) {
          const importerRel = relative(importer.file);
          if (importerRel) {
            env.moduleGraph.invalidateModule(importer);
            pending.add(importerRel);
          }
        }
      }
    }
    if (!timer) timer = setTimeout(flush, 30);
  };

  const plugin = {
    name: "preview:build-errors",
    configureServer(s) {
      // Called again after a restart, with fresh environments to hook.
      server = s;
      const { hot } = clientEnv(s);
      const send = hot.send.bind(hot);
      hot.send = (...args) => {
        const payload = args[0];
        if (payload?.type === "update" && Array.isArray(payload.updates)) {
          const paths = payload.updates.map((u) => relative(u?.path) ?? String(u?.path));
          emit({ event: "hmr", type: "update", paths: [...new Set(paths)] });
        } else if (payload?.type === "full-reload") {
          emit({ event: "hmr", type: "full-reload", paths: [relative(payload.path) ?? "*"] });
        }
        if (payload && typeof payload === "object" && payload.type === "error") {
          const e = fromViteError(payload.err, null);
          if (e) {
            record(e);
            run(async () => {});
          }
        }
        return send(...args);
      };
      if (major < 6) {
        // Vite 5 tells plugins of edits only (below); files that come or go are learnt
        // from its watcher (the check's delay gives Vite's own handler its turn).
        const env = clientEnv(s);
        for (const [event, type] of [["add", "create"], ["unlink", "delete"]]) {
          s.watcher.on(event, (name) => {
            const file = path.resolve(name);
            const modules = [...(env.moduleGraph.getModulesByFile(file) ?? [])];
            fileChanged(env, { type, file, modules });
          });
        }
      }
    },
    hotUpdate(options) {
      if (this.environment.name === "client") fileChanged(this.environment, options);
    },
  };
  if (major < 6) {
    // Vite 5 has no `hotUpdate`: its `handleHotUpdate` runs at the same point for edits.
    // (Vite 6+ would call both, so it is only added here.)
    plugin.handleHotUpdate = (ctx) =>
      fileChanged(clientEnv(ctx.server), { type: "update", file: ctx.file, modules: ctx.modules });
  }

  return { plugin, crawl: () => run(() => crawl(clientEnv(server))) };
}

// ---- runtime errors -------------------------------------------------------------------

// The page client (preview-client.js) is added to every HTML page as a module that runs
// before the app's own; its reports come back over Vite's HMR socket. Positions in them
// are in the transformed modules browsers ran: mapped here through each module's source
// map to the uploaded file, line and column, and the stack rewritten the same way, so
// a generator sees `src/main.js:7:11` and never a dev-server URL.
const CLIENT_ID = "\0preview-client"; // served as /@id/__x00__preview-client
const FRAME = /((?:https?:\/\/[^\s/()]+)?\/[^\s()]*?):(\d+):(\d+)/g;

function previewClient(root) {
  // Served without its comment lines: every preview page loads it.
  const source = fs
    .readFileSync(new URL("./preview-client.js", import.meta.url), "utf8")
    .split("\n")
    .filter((line) => !/^\s*\/\//.test(line))
    .join("\n");
  let base = "/";
  let server = null;
  const maps = new WeakMap(); // transform result -> TraceMap

  // {file, line, column} of one frame, or null when it is not a workspace module.
  const mapFrame = (url, line, column) => {
    let pathname;
    try {
      pathname = new URL(url, "http://preview.invalid").pathname;
    } catch {
      return null;
    }
    if (!pathname.startsWith(base)) return null;
    const rel = workspacePath(root, decodeURIComponent(pathname.slice(base.length)));
    if (!rel) return null;
    const env = server && clientEnv(server);
    const mod = [...(env?.moduleGraph.getModulesByFile(path.join(root, rel)) ?? [])][0];
    const result = mod?.transformResult;
    if (result?.map?.mappings) {
      let traced = maps.get(result);
      if (!traced) {
        traced = new TraceMap(result.map);
        maps.set(result, traced);
      }
      const original = originalPositionFor(traced, { line, column: Math.max(0, column - 1) });
      if (original.line != null) {
        // a map's sources are relative to the module's own directory
        const source = original.source
          ? path.resolve(path.dirname(path.join(root, rel)), original.source.replace(/^file:\/\//, ""))
          : null;
        const file = (source && workspacePath(root, source)) ?? rel;
        return { file, line: original.line, column: original.column + 1 };
      }
    }
    return { file: rel, line, column };
  };

  const mapStack = (stack) => {
    let first = null;
    const text = String(stack).replace(FRAME, (whole, url, line, column) => {
      const place = mapFrame(url, Number(line), Number(column));
      if (!place) return whole.replace(/^https?:\/\/[^/]+/, "");
      first ??= place;
      return `${place.file}:${place.line}:${place.column}`;
    });
    return { first, text };
  };

  const onReport = (data) => {
    if (!data || typeof data !== "object") return;
    if (data.kind === "update-applied") {
      const paths = Array.isArray(data.paths)
        ? data.paths.map((p) => workspacePath(root, String(p ?? "")) ?? String(p))
        : [];
      emit({ event: "hmr", type: "applied", paths: paths.slice(0, 100) });
      return;
    }
    const { first, text } = mapStack(typeof data.stack === "string" ? data.stack : "");
    emit({
      event: "runtime-error",
      kind: String(data.kind ?? "error").slice(0, 40),
      message: withoutRoot(root, String(data.message ?? "")).slice(0, 2000),
      file: first?.file ?? null,
      line: first?.line ?? 0,
      column: first?.column ?? 0,
      stack: withoutRoot(root, text).slice(0, 4000),
    });
  };
  return {
    name: "preview:client",
    configResolved(config) {
      base = config.base;
    },
    configureServer(s) {
      server = s; // again after a restart
      clientEnv(s).hot.on("preview:report", onReport);
    },
    load(id) {
      return id === CLIENT_ID ? source : undefined;
    },
    transformIndexHtml: {
      order: "pre",
      handler: () => [
        {
          tag: "script",
          attrs: { type: "module", src: "/@id/__x00__preview-client" }, // Vite adds the base
          injectTo: "head-prepend",
        },
      ],
    },
  };
}

// ---- change notices -------------------------------------------------------------------

// The node writes one JSON line to stdin after each update it stored:
//   {"changed": ["src/App.jsx"], "deleted": ["src/old.js"]}
// File watchers drop events under load (chokidar folds an atomic replace into a late
// unlink + add, or misses it); Vite then keeps serving the old module, sends no update
// and reports no error. After a grace period, every noticed path whose current state the
// watcher has not reported is replayed through the watcher's own listeners, so Vite's
// HMR and the error tracker run as if the event had arrived on time.
const NOTICE_GRACE_MS = 500;

function changeNotices(server, root, lines) {
  const seen = new Map(); // absolute path -> the last state of it the watcher reported
  let hooked = null;
  const watcher = () => {
    // A restart (the app's config changed) brings a new watcher: listen to it too.
    const w = server.watcher;
    if (w && w !== hooked) {
      hooked = w;
      w.on("all", (event, file) => {
        if (event === "add" || event === "change" || event === "unlink") {
          const abs = path.resolve(file);
          seen.set(abs, fileState(abs));
        }
      });
    }
    return w;
  };
  const known = (abs) =>
    (seen.get(abs) ?? null) !== null ||
    Boolean(clientEnv(server).moduleGraph?.getModulesByFile(abs)?.size);
  const replay = (rels) => {
    const w = watcher();
    if (!w) return;
    for (const rel of rels) {
      if (typeof rel !== "string") continue;
      const abs = path.resolve(root, rel);
      if (!inside(root, abs) || abs === root) continue;
      const now = fileState(abs);
      if (seen.has(abs) && seen.get(abs) === now) continue; // the watcher saw this state
      const event = now !== null ? (known(abs) ? "change" : "add") : known(abs) ? "unlink" : null;
      seen.set(abs, now);
      if (event) {
        stderrLogger.info(`watcher missed ${event} of ${rel}: replayed`);
        w.emit(event, abs);
      }
    }
  };
  watcher();
  lines.on("line", (line) => {
    let notice;
    try {
      notice = JSON.parse(line);
    } catch {
      return;
    }
    const rels = [...(notice?.changed ?? []), ...(notice?.deleted ?? [])];
    if (rels.length) setTimeout(() => replay(rels), NOTICE_GRACE_MS).unref();
  });
}

// ---- memory when idle -----------------------------------------------------------------

// A page load leaves tens of MiB of garbage in V8's old generation (the transformed
// modules' strings and source maps), and nothing collects it while the server is quiet: a
// full GC runs only when JS allocates (V8's memory reducer got to it within 20 s in some
// runs, not in others). One full GC once nothing happened for IDLE_GC_MS gives it back.
// Measured on the fixture app with devserver.py's semi-space cap, one Vite 5 s after its
// page: PSS_Anon 73-80 MiB with it, 79-112 without; the GC itself takes ~15 ms.
const IDLE_GC_MS = 2000;

// V8's collector, kept off this process's global object (the app's config and plugins run
// in this process): exposed only to a throwaway context, and the flag reset at once so
// that no context made later has it either.
function privateGc() {
  v8.setFlagsFromString("--expose-gc");
  try {
    return vm.runInNewContext("gc");
  } finally {
    v8.setFlagsFromString("--no-expose-gc");
  }
}

// `touch()` (re)arms the collection IDLE_GC_MS from now; its plugin touches on every
// request and every file update Vite handles. A plugin and not a listener on
// `server.httpServer`: a restart (the app's config changed) brings a new server, and
// plugins are applied to it again.
function idleCollector() {
  const gc = privateGc();
  let timer = null;
  const touch = () => {
    if (timer) {
      timer.refresh();
    } else {
      timer = setTimeout(() => {
        const before = v8.getHeapStatistics().used_heap_size;
        const t0 = performance.now();
        gc();
        const ms = Math.round(performance.now() - t0);
        const after = v8.getHeapStatistics().used_heap_size;
        const mib = (n) => Math.round(n / 1048576);
        stderrLogger.info(`idle: full GC in ${ms} ms, V8 heap ${mib(before)} -> ${mib(after)} MiB`);
      }, IDLE_GC_MS);
      timer.unref();
    }
  };
  const plugin = {
    name: "preview:idle-gc",
    configureServer(server) {
      server.middlewares.use((_req, _res, next) => {
        touch();
        next();
      });
    },
    handleHotUpdate: () => touch(), // Vite 5
    hotUpdate: () => touch(), // Vite 6+ (which calls both)
  };
  return { plugin, touch };
}

// ---- main -----------------------------------------------------------------------------

async function main() {
  const lines = readline.createInterface({ input: process.stdin });
  // stdin's end means the node is gone, whatever this process is doing (importing, loading
  // the app's config, serving): it ends at once and for certain, since nobody is left to
  // stop it. Not process.exit: launchers whose node was killed while they imported Vite
  // hung in exit's teardown (a futex, rolldown's worker thread starting) and were still
  // running long after the fault tests.
  lines.on("close", () => process.kill(process.pid, "SIGKILL"));
  process.stdin.on("error", () => lines.close());
  const configLine = new Promise((resolve) => lines.once("line", resolve));
  // Node has started (and, warm, Vite and the plugins are imported): a launcher started
  // ahead of need (previewnode/warm.py) is ready to be handed a session.
  if (process.argv.includes("--warm")) await runtime();
  emit({ event: "waiting" });
  const cfg = parseConfig(await configLine);
  if (!cfg.ownConfig) {
    // sandboxed, the sandbox is the guard
    guardTailwind(cfg.root);
    narrowFileSystem([
      cfg.root,
      cfg.nodeModules,
      cfg.cacheDir,
      fileURLToPath(new URL(".", import.meta.url)), // the runtime: Vite, plugins, client
    ]);
  }
  const port = cfg.port === 0 ? await freePort() : cfg.port;
  if (cfg.bundleConfigBeside) bundleConfigBeside(cfg.root);

  // The app's own config (sandboxed only) or the fixed one; the platform's settings
  // below are merged last either way, so they win over anything the app sets.
  const own = cfg.ownConfig ? appConfigFile(cfg.root) : null;
  const { createServer, major } = await loadVite(cfg, own);
  const tracker = errorTracker(cfg.root, major);
  const { react, tailwindcss } = own ? {} : await runtime();
  const idle = idleCollector();
  const fixed = own
    ? { configFile: own, plugins: [tracker.plugin, previewClient(cfg.root), idle.plugin] }
    : {
        configFile: false,
        plugins: [
          globGuard(cfg.root),
          react(),
          tailwindcss(),
          tracker.plugin,
          previewClient(cfg.root),
          idle.plugin,
        ],
        css: { postcss: {} },
        resolve: {
          alias: [
            ...aliasesFromTsconfig(cfg.root),
            { find: "@", replacement: path.join(cfg.root, "src") },
          ],
        },
      };
  const server = await createServer({
    ...fixed,
    root: cfg.root,
    base: cfg.base,
    mode: "development",
    cacheDir: cfg.cacheDir,
    clearScreen: false,
    logLevel: "info",
    customLogger: stderrLogger,
    server: {
      host: "127.0.0.1",
      port,
      strictPort: true,
      allowedHosts: cfg.allowedHosts,
      // Vite's default CORS lets every *.localhost origin read every other one: with a
      // web origin per session that would hand session A the source of session B.
      cors: false,
      // Vite 8 reads the HMR socket's options from `server.ws`; Vite 5 to 7 from
      // `server.hmr` (their `server.ws` can only be false).
      [major >= 8 ? "ws" : "hmr"]: {
        path: "hmr",
        clientPort: cfg.clientPort,
        protocol: cfg.clientProtocol,
      },
      fs: {
        strict: true,
        allow: [cfg.root, cfg.nodeModules],
      },
    },
  });

  let closing = false;
  const shutdown = async (code) => {
    if (closing) return;
    closing = true;
    // Never outlive a stuck close: the supervisor kills the group anyway.
    setTimeout(() => process.exit(code), 1500).unref();
    try {
      await server.close();
    } finally {
      process.exit(code);
    }
  };
  process.on("SIGTERM", () => shutdown(0));
  process.on("SIGINT", () => shutdown(0));

  await server.listen();
  changeNotices(server, cfg.root, lines);
  // Edits made right after "ready" must reach HMR: wait for the watcher's initial scan
  // (chokidar's internal flag; bounded, so a huge workspace cannot hold the start).
  const watcher = server.watcher;
  if (watcher?._readyEmitted === false) {
    await new Promise((resolve) => {
      watcher.once("ready", resolve);
      setTimeout(resolve, 5000).unref();
    });
  }
  const address = server.httpServer.address();
  if (cfg.listenFd !== null) {
    await bridge(cfg.listenFd, address.port);
    emit({ event: "ready", fd: cfg.listenFd });
  } else {
    emit({ event: "ready", port: address.port });
  }
  tracker.crawl().then(idle.touch);
}

main().catch((err) => {
  process.stderr.write(`launcher: ${stripVT(err?.stack ?? err)}\n`);
  process.exit(1);
});

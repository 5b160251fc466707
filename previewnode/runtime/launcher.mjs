// Starts one Vite dev server for one preview session.
//
// Usage: node launcher.mjs '<json config>'
//   {"root", "base", "port", "allowedHosts", "clientPort", "clientProtocol",
//    "nodeModules", "cacheDir", "socket", "ownConfig"}
//
// The session's files are untrusted. Sandboxed ("ownConfig"), the app's own config runs,
// with the platform's settings merged last; the sandbox is the guard. Unsandboxed, this
// launcher never loads a config file from the workspace (vite.config.*, postcss.config.*,
// tailwind.config.*), reads tsconfig/jsconfig `paths` as JSON data only, and serves
// nothing outside the workspace and its dependency tree. stdout carries only JSON lines for the supervisor (previewnode/devserver.py):
//   {"event":"ready","port":N}
//   {"event":"errors","errors":[{"file","line","column","message"}]}
//   {"event":"hmr","type":"update"|"full-reload","paths":["src/App.jsx"]}
// Everything else Vite or a plugin prints goes to stderr. The process exits when stdin
// reaches EOF (its supervisor is gone) and closes the server on SIGTERM. stdin carries
// the node's change notices (see "change notices" below).

import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";

import tailwindcss from "@tailwindcss/vite";
import react from "@vitejs/plugin-react";
import { createServer } from "vite";

import { describe, stripVT, workspacePath } from "./build-errors.mjs";

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

function readConfig() {
  const raw = process.argv[2];
  if (!raw) throw new Error("usage: node launcher.mjs '<json config>'");
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
    // (the sandbox has no network the node could reach).
    ownConfig: c.ownConfig === true,
    socket: typeof c.socket === "string" ? c.socket : null,
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

// The node reaches a sandboxed dev server only through this unix socket: each connection
// is piped to Vite on the sandbox's own loopback.
function bridge(socketPath, port) {
  return new Promise((resolve, reject) => {
    try { fs.unlinkSync(socketPath); } catch {}
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
    server.listen(socketPath, () => resolve(server));
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

// Tailwind's `@plugin` and `@config` directives import JavaScript into this process: from
// an uploaded CSS file that would run uploaded (or attacker-published) code on the node.
// @tailwindcss/node asks `globalThis.__tw_load` first for every such module; we let only
// the runtime's own node_modules through and refuse the rest with a build error.
function guardTailwindModules() {
  const runtimeModules = fs.realpathSync(new URL("./node_modules", import.meta.url));
  globalThis.__tw_load = async (url) => {
    let file;
    try {
      file = fs.realpathSync(new URL(url.split("?")[0]));
    } catch {
      file = null;
    }
    if (file && inside(runtimeModules, file)) return undefined;
    throw new Error(
      "Tailwind @plugin and @config (JavaScript) are not supported in previews; use CSS-only configuration (@theme, @utility, @custom-variant)",
    );
  };
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
function errorTracker(root) {
  const errors = new Map();
  let published = "[]";
  let server = null;
  let pending = new Set();
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
  const fromViteError = (err, fallback) => describe(err, { root, fallback, readSource });

  const publish = () => {
    const list = [...errors.values()].sort((a, b) => a.file.localeCompare(b.file));
    const text = JSON.stringify(list);
    if (text !== published) {
      published = text;
      emit({ event: "errors", errors: list });
    }
  };

  // Transform one workspace module the way a browser request would; a module that was
  // never requested is skipped (Vite would not report it either).
  const check = async (env, rel) => {
    const abs = path.join(root, rel);
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
        if (e) errors.set(e.file, e);
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
  // before any browser asks (and the first page finds its modules transformed).
  const crawl = async (env) => {
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
          if (e) errors.set(e.file, e);
        }
      } else {
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
    pending = new Set();
    run(async () => {
      if (!server) return;
      const env = server.environments.client;
      if (files.has("index.html")) {
        await crawl(env);
        files.delete("index.html");
      }
      for (const rel of new Set([...files, ...errors.keys()])) await check(env, rel);
    });
  };

  const plugin = {
    name: "preview:build-errors",
    configureServer(s) {
      // Called again after a restart, with fresh environments to hook.
      server = s;
      const hot = s.environments.client.hot;
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
            errors.set(e.file, e);
            run(async () => {});
          }
        }
        return send(...args);
      };
    },
    hotUpdate(options) {
      if (this.environment.name !== "client") return;
      const rel = relative(options.file);
      if (!rel) return;
      pending.add(rel);
      if (options.type === "delete") {
        // Importers of a deleted file fail to resolve it; make them transform again.
        for (const mod of options.modules) {
          for (const importer of mod.importers) {
            const importerRel = relative(importer.file);
            if (importerRel) {
              this.environment.moduleGraph.invalidateModule(importer);
              pending.add(importerRel);
            }
          }
        }
      }
      // Vite invalidated the module before this hook; check after its update went out.
      if (!timer) timer = setTimeout(flush, 30);
    },
  };

  return { plugin, crawl: () => run(() => crawl(server.environments.client)) };
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

function changeNotices(server, root) {
  const seen = new Map(); // absolute path -> stamp of the last state the watcher reported
  const stamp = (abs) => {
    try {
      const st = fs.statSync(abs);
      return st.isFile() ? `${st.ino}:${st.mtimeMs}:${st.size}` : null;
    } catch {
      return null;
    }
  };
  let hooked = null;
  const watcher = () => {
    // A restart (the app's config changed) brings a new watcher: listen to it too.
    const w = server.watcher;
    if (w && w !== hooked) {
      hooked = w;
      w.on("all", (event, file) => {
        if (event === "add" || event === "change" || event === "unlink") {
          const abs = path.resolve(file);
          seen.set(abs, stamp(abs));
        }
      });
    }
    return w;
  };
  const known = (abs) =>
    (seen.get(abs) ?? null) !== null ||
    Boolean(server.environments?.client?.moduleGraph.getModulesByFile(abs)?.size);
  const replay = (rels) => {
    const w = watcher();
    if (!w) return;
    for (const rel of rels) {
      if (typeof rel !== "string") continue;
      const abs = path.resolve(root, rel);
      if (!inside(root, abs) || abs === root) continue;
      const now = stamp(abs);
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
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
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

// ---- main -----------------------------------------------------------------------------

async function main() {
  const cfg = readConfig();
  if (!cfg.ownConfig) guardTailwindModules();  // sandboxed, the sandbox is the guard
  const port = cfg.port === 0 ? await freePort() : cfg.port;
  const tracker = errorTracker(cfg.root);

  // The app's own config (sandboxed only) or the fixed one; the platform's settings
  // below are merged last either way, so they win over anything the app sets.
  const own = cfg.ownConfig ? appConfigFile(cfg.root) : null;
  const fixed = own
    ? { configFile: own, plugins: [tracker.plugin] }
    : {
        configFile: false,
        plugins: [globGuard(cfg.root), react(), tailwindcss(), tracker.plugin],
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
      ws: {
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
  process.stdin.on("end", () => shutdown(0));
  process.stdin.on("error", () => shutdown(0));
  process.stdin.resume();

  await server.listen();
  changeNotices(server, cfg.root);
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
  if (cfg.socket) {
    await bridge(cfg.socket, address.port);
    emit({ event: "ready", socket: cfg.socket });
  } else {
    emit({ event: "ready", port: address.port });
  }
  tracker.crawl();
}

main().catch((err) => {
  process.stderr.write(`launcher: ${stripVT(err?.stack ?? err)}\n`);
  process.exit(1);
});

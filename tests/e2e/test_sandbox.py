"""An uploaded vite.config.js that attacks the node, run for real inside the sandbox.

The config runs (that is the point of the sandbox: the app's own config and plugins
work), tries what a hostile tenant would, writes what it saw into its workspace, and
the test reads it back through the API. Each attempt must fail or be contained; the
session still serves; another session is unaffected; after DELETE nothing it started
is left. No packet leaves the machine: inside the sandbox only `lo` exists, and the
only connections tried are to the node's own loopback ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.cluster import app_files, http, single_node
from tests.support.processes import poll_until, processes
from tests.support.ring import SECRET
from tests.support.templates import fill, node_targets

pytestmark = pytest.mark.e2e

ATTACK = """
import fs from "node:fs";
import os from "node:os";
import net from "node:net";
import { spawn } from "node:child_process";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

export default async () => {
const out = {};
const attempt = (name, fn) => {
  try { out[name] = "allowed: " + JSON.stringify(fn()).slice(0, 300); }
  catch (e) { out[name] = "refused: " + (e.code || e.message); }
};
attempt("read_secret", () => fs.readFileSync(SECRET_FILE, "utf8"));
attempt("list_sessions", () => fs.readdirSync(SESSIONS_DIR));
attempt("read_other_session", () => fs.readFileSync(OTHER_APP, "utf8"));
attempt("write_next_to_data_dir", () => fs.writeFileSync(DATA_DIR + "/../pwned", "x"));
attempt("write_data_dir", () => fs.writeFileSync(DATA_DIR + "/pwned", "x"));
attempt("see_node_process", () => fs.readFileSync("/proc/" + NODE_PID + "/cmdline", "utf8"));
attempt("signal_node", () => process.kill(NODE_PID, 0));
attempt("fill_tmp", () => {
  const mib = Buffer.alloc(1 << 20, 120);
  for (let i = 0; i < 200; i++) fs.appendFileSync("/tmp/fill", mib);
  return "wrote 200 MiB";
});
try { fs.rmSync("/tmp/fill"); } catch {}
out.processes = fs.readdirSync("/proc").filter((n) => /^[0-9]+$/.test(n)).length;
out.interfaces = Object.keys(os.networkInterfaces());
out.environment = Object.keys(process.env).sort();
out.gc = typeof globalThis.gc;
out.root_writable = (() => { try { fs.writeFileSync("/pwned", "x"); return true; } catch { return false; } })();
spawn("sleep", ["7777"], { detached: true, stdio: "ignore" }).unref();
const connect = (port) => new Promise((resolve) => {
  const s = net.connect(port, "127.0.0.1");
  s.on("connect", () => { s.destroy(); resolve("allowed"); });
  s.on("error", (e) => resolve("refused: " + e.code));
});
out.connect_node = await connect(NODE_PORT);
out.connect_router = await connect(ROUTER_PORT);
fs.writeFileSync("containment.json", JSON.stringify(out, null, 1));
return { plugins: [react(), tailwindcss()] };
};
"""


def sleepers() -> list[str]:
    done = subprocess.run(["pgrep", "-af", "sleep 7777"], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if "pgrep" not in line]


def get_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return int(resp.status)


def test_a_hostile_config_runs_contained_and_the_session_still_serves(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    data = tmp_path / "data"
    assert not sleepers()
    with processes(tmp_path) as ps:
        proc, port = ps.node("node-0", data, secret, "--sandbox", "required")
        base = f"http://127.0.0.1:{port}"
        assert http("GET", f"{base}/readyz").json()["sandbox"] == "bwrap"
        other = http("POST", f"{base}/kontext/preview?wait=ready", {"files": app_files()}).json()
        assert other["status"] == "ready"
        files = {
            **app_files(),
            "vite.config.js": fill(
                ATTACK, **node_targets(data, secret, other["sessionId"], proc.popen.pid, port)
            ),
        }
        made = http("POST", f"{base}/kontext/preview?wait=ready", {"files": files})
        assert made.status == 201, made.body
        s = made.json()
        assert s["status"] == "ready", s
        assert s["ignored"] == []  # configs run inside the sandbox
        # the session serves, with its own config (its plugins transform JSX)
        assert get_status(f"{base}/preview/{s['sessionId']}/") == 200
        assert get_status(f"{base}/preview/{s['sessionId']}/src/App.jsx") == 200
        read_back = http("GET", f"{base}/kontext/preview/{s['sessionId']}/files").json()
        seen = json.loads(
            next(f["content"] for f in read_back["files"] if f["path"] == "containment.json")
        )
        # it sees its own session's directory (its workspace is bound there), never another's
        assert other["sessionId"] not in seen["list_sessions"], seen["list_sessions"]
        for name in (
            "read_secret",
            "read_other_session",
            "write_next_to_data_dir",
            "write_data_dir",
            "see_node_process",
            "signal_node",
            "fill_tmp",  # its private /tmp is a sized tmpfs (memory), not half the RAM
        ):
            assert seen[name].startswith("refused"), (name, seen[name])
        assert seen["connect_node"].startswith("refused") and seen["connect_router"].startswith(
            "refused"
        ), seen
        assert seen["fill_tmp"] == "refused: ENOSPC", seen["fill_tmp"]
        assert seen["interfaces"] == ["lo"]  # no network but its own loopback
        assert seen["processes"] < 10  # its own PID namespace
        assert not seen["root_writable"]
        assert seen["gc"] == "undefined"  # the launcher's idle GC is its own, not the app's
        assert not [k for k in seen["environment"] if k.startswith("PREVIEW")]
        assert SECRET not in json.dumps(seen)
        assert not (data / "pwned").exists() and not (tmp_path / "pwned").exists()
        # the spawned process lives inside the sandbox only as long as the session does
        assert sleepers(), "the config's detached process should be running inside"
        # another session is unaffected
        assert get_status(f"{base}/preview/{other['sessionId']}/") == 200
        assert http("DELETE", f"{base}/kontext/preview/{s['sessionId']}").status == 200
        assert not sleepers(), "a process the session started outlived its DELETE"
        assert get_status(f"{base}/preview/{other['sessionId']}/") == 200
        assert os.path.exists(str(secret))


def test_a_css_import_of_an_absolute_path_leaks_nothing(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    with processes(tmp_path) as ps:
        _, port = ps.node("node-0", tmp_path / "data", secret, "--sandbox", "required")
        base = f"http://127.0.0.1:{port}"
        files = {**app_files(), "src/leak.css": f'@import "{secret}";\n'}
        s = http("POST", f"{base}/kontext/preview?wait=ready", {"files": files}).json()
        assert s["status"] == "ready", s
        try:
            leak = f"{base}/preview/{s['sessionId']}/src/leak.css"
            with urllib.request.urlopen(leak, timeout=60) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
        session = http("GET", f"{base}/kontext/preview/{s['sessionId']}").body
        for answer in (body, session):
            assert SECRET.encode() not in answer


BLIND_WATCHER = """
import react from "@vitejs/plugin-react";
export default { plugins: [react()], server: { watch: { ignored: ["**/src/App.jsx"] } } };
"""


def test_an_edit_the_file_watcher_misses_still_reaches_vite(tmp_path: Path) -> None:
    """The node's change notice replays what the watcher dropped (here: never sees)."""
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    with processes(tmp_path) as ps:
        _, port = ps.node("node-0", tmp_path / "data", secret, "--sandbox", "required")
        base = f"http://127.0.0.1:{port}"
        files = {**app_files(), "vite.config.js": BLIND_WATCHER}
        s = http("POST", f"{base}/kontext/preview?wait=ready", {"files": files}).json()
        assert s["status"] == "ready", s
        api = f"{base}/kontext/preview/{s['sessionId']}"
        assert get_status(f"{base}/preview/{s['sessionId']}/src/App.jsx") == 200
        broken = "export default function App() {\n  return <div>\n}\n"
        assert http("PUT", f"{api}/files", {"files": {"src/App.jsx": broken}}).status == 200
        errors = poll_until(lambda: http("GET", api).json()["errors"], 20)
        assert errors[0]["file"] == "src/App.jsx" and errors[0]["line"] >= 2, errors
        fixed = {"files": {"src/App.jsx": app_files()["src/App.jsx"]}}
        assert http("PUT", f"{api}/files", fixed).status == 200
        poll_until(lambda: not http("GET", api).json()["errors"], 20)


SOCKET_SWAP = """
import fs from "node:fs";
import react from "@vitejs/plugin-react";

// Once serving: replace this session's listener with a link to a unix socket on the host
// (a container runtime's API, say), in every directory bound here that could hold it.
const swap = () => {
  const out = {};
  for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\\n")) {
    const f = line.split(" ");
    if (f[4] && f[4].startsWith("/preview/")) out[f[4]] = f[3];  // host paths leak here
  }
  for (const inside of Object.keys(out)) {
    try {
      fs.rmSync(inside + "/dev.sock", { force: true });
      fs.symlinkSync(HOST_SOCKET, inside + "/dev.sock");
      out["planted " + inside] = HOST_SOCKET;
    } catch (e) { out["refused " + inside] = e.code || e.message; }
  }
  fs.writeFileSync("swap.json", JSON.stringify(out, null, 1));
};
export default {
  plugins: [react(), { name: "swap", configureServer(server) {
    server.httpServer?.once("listening", () => setTimeout(swap, 1000));
  } }],
};
"""


def host_socket(path: Path) -> Iterator[None]:
    """A unix socket on the host answering every connection with a marker (a stand-in
    for a container runtime's or init system's API socket)."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                body = b"host-socket-marker"
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(2)
        server.close()


def test_a_dev_server_cannot_point_its_listener_at_a_host_socket(tmp_path: Path) -> None:
    """The node reaches a sandboxed dev server by a socket of its own, never by a path the
    sandbox can replace: a symlink planted there sent this session's requests (the
    tenant's own included) into any unix socket on the host (reproduced on c751959: the
    marker came back)."""
    sock = tmp_path / "host.sock"
    with (
        contextlib.contextmanager(host_socket)(sock),
        single_node(tmp_path, "--sandbox", "required") as node,
    ):
        base = node.url
        attack = {**app_files(), "vite.config.js": fill(SOCKET_SWAP, HOST_SOCKET=str(sock))}
        made = http("POST", f"{base}/kontext/preview?wait=ready", {"files": attack}).json()
        sid = made["sessionId"]
        assert made["status"] == "ready", made
        read = f"{base}/kontext/preview/{sid}/files"
        seen = poll_until(
            lambda: next(
                (
                    f["content"]
                    for f in http("GET", read).json()["files"]
                    if f["path"] == "swap.json"
                ),
                None,
            ),
            20,
        )
        with ThreadPoolExecutor(8) as pool:  # new connections, not only pooled ones
            pages = list(pool.map(lambda _: http("GET", f"{base}/preview/{sid}/"), range(16)))
        assert not [p for p in pages if b"host-socket-marker" in p.body], seen
        assert {p.status for p in pages} == {200}, seen  # its own dev server still serves

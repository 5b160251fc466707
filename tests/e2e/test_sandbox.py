"""An uploaded vite.config.js that attacks the node, run for real inside the sandbox.

The config runs (that is the point of the sandbox: the app's own config and plugins
work), tries what a hostile tenant would, writes what it saw into its workspace, and
the test reads it back through the API. Each attempt must fail or be contained; the
session still serves; another session is unaffected; after DELETE nothing it started
is left. No packet leaves the machine: inside the sandbox only `lo` exists, and the
only connections tried are to the node's own loopback ports.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.cluster import app_files, http
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

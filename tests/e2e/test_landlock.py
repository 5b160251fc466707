"""The Landlock mechanism (`--sandbox-mechanism landlock`), attacked for real.

The same kind of hostile `vite.config.js` as `test_sandbox.py`, run by a node whose dev
servers are confined by `previewnode/confine.py` instead of bubblewrap: no namespaces,
so each claim in docs/architecture.md rests on a Landlock rule, the seccomp filter, the
dropped capabilities or confine's sweep, and each has a case here. The connections tried
go only to 127.0.0.1 (and are refused before they leave the process).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from previewnode import confine
from previewnode.sandbox import (
    confine_argv,
    landlock_policy,
    prelude_then_exec,
    probe_landlock,
)
from tests.support import vite_client
from tests.support.cluster import app_files, http
from tests.support.processes import launcher_pids, poll_until, processes
from tests.support.ring import SECRET
from tests.support.templates import fill, node_targets

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        probe_landlock(sys.executable) is not None, reason="no Landlock ABI >= 4 here"
    ),
]

ATTACK = """
import fs from "node:fs";
import os from "node:os";
import net from "node:net";
import dgram from "node:dgram";
import { spawn, spawnSync } from "node:child_process";
import react from "@vitejs/plugin-react";

export default async () => {
const out = {};
const attempt = (name, fn) => {
  try { out[name] = "allowed: " + String(JSON.stringify(fn() ?? null)).slice(0, 300); }
  catch (e) { out[name] = "refused: " + (e.code || e.message); }
};
attempt("read_secret", () => fs.readFileSync(SECRET_FILE, "utf8"));
attempt("stat_secret", () => fs.statSync(SECRET_FILE).size);
attempt("list_sessions", () => fs.readdirSync(SESSIONS_DIR));
attempt("read_other_session", () => fs.readFileSync(OTHER_APP, "utf8"));
attempt("write_next_to_data_dir", () => fs.writeFileSync(DATA_DIR + "/../pwned", "x"));
attempt("write_data_dir", () => fs.writeFileSync(DATA_DIR + "/pwned", "x"));
attempt("write_tmp", () => fs.writeFileSync("/tmp/landlock-pwned", "x"));
attempt("write_own_tmpdir", () => fs.writeFileSync(process.env.TMPDIR + "/ok", "x"));
attempt("write_root", () => fs.writeFileSync("/pwned", "x"));
attempt("list_proc", () => fs.readdirSync("/proc").length);
attempt("proc_net_unix", () => fs.readFileSync("/proc/net/unix", "utf8"));
attempt("see_node_process", () => fs.readFileSync("/proc/" + NODE_PID + "/cmdline", "utf8"));
attempt("own_environ", () => fs.readFileSync("/proc/self/environ", "utf8"));
attempt("signal_node", () => process.kill(NODE_PID, 0));
attempt("signal_parent", () => process.kill(process.ppid, 0));
attempt("setuid", () => process.setuid(4321));
attempt("write_dependency_set", () => fs.writeFileSync(DEPS + "/pwned", "x"));
attempt("signal_missing_pid", () => process.kill(4194000, 0));
out.pid = process.pid;
out.ppid = process.ppid;
out.hostname = os.hostname();
out.cpus = os.cpus().length;
out.parallelism = os.availableParallelism();
out.unshare = spawnSync("unshare", ["--user", "--map-root-user", "true"]).status;
out.environment = Object.keys(process.env).sort();
// A detached child, and a double-forked one in its own session: neither in the node's
// process group for the dev server, so only confine's sweep can find them.
spawn("sleep", ["7781"], { detached: true, stdio: "ignore" }).unref();
spawn("sh", ["-c", "(setsid sleep 7782 &) &"], { detached: true, stdio: "ignore" }).unref();
const connect = (port) => new Promise((resolve) => {
  const s = net.connect(port, "127.0.0.1");
  s.on("connect", () => { s.destroy(); resolve("allowed"); });
  s.on("error", (e) => resolve("refused: " + e.code));
});
const connectUnix = (path) => new Promise((resolve) => {
  const s = net.connect(path);
  s.on("connect", () => { s.destroy(); resolve("allowed"); });
  s.on("error", (e) => resolve("refused: " + e.code));
});
const udp = (port) => new Promise((resolve) => {
  try {
    const s = dgram.createSocket("udp4");
    s.on("error", (e) => resolve("refused: " + e.code));
    s.send("x", port, "127.0.0.1", (e) => { s.close(); resolve(e ? "refused: " + e.code : "allowed"); });
  } catch (e) { resolve("refused: " + e.code); }
});
const listen = (port) => new Promise((resolve) => {
  const s = net.createServer();
  s.on("error", (e) => resolve("refused: " + e.code));
  s.listen(port, "127.0.0.1", () => { s.close(); resolve("allowed"); });
});
out.connect_node = await connect(NODE_PORT);
out.connect_router = await connect(ROUTER_PORT);
out.connect_other_session = await connect(OTHER_PORT);
out.connect_unix = await connectUnix(UNIX_SOCKET);
out.udp = await udp(NODE_PORT);
out.listen_other_port = await listen(0);
fs.writeFileSync("containment.json", JSON.stringify(out, null, 1));
return { plugins: [react()] };
};
"""


def sleepers() -> list[str]:
    """The `sleep 7781`/`sleep 7782` processes these tests' configs start."""
    done = subprocess.run(["pgrep", "-ax", "sleep"], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if line.split()[-1] in ("7781", "7782")]


def listening_port(pid: int) -> int:
    """The TCP port the process `pid` listens on (the other session's Vite)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if f"pid={pid}," in line:
            return int(line.split()[3].rsplit(":", 1)[1])
    raise AssertionError(f"pid {pid} listens nowhere:\n{out}")


async def hmr_update_arrives(port: int, sid: str) -> None:
    host = f"127.0.0.1:{port}"
    base = f"/preview/{sid}/"
    token = await vite_client.ws_token(port, base, host)
    status, sock = await vite_client.hmr_handshake(port, f"{base}hmr?token={token}", host)
    assert status == 101
    assert (await sock.receive_json())["type"] == "connected"
    for path in ("src/main.jsx", "src/App.jsx"):
        assert (await vite_client.http_get(port, base + path, host)).status == 200
    app = app_files()["src/App.jsx"].replace("Count", "Clicks")
    api = f"http://127.0.0.1:{port}/kontext/preview/{sid}/files"
    put = await trio.to_thread.run_sync(lambda: http("PUT", api, {"files": {"src/App.jsx": app}}))
    assert put.status == 200
    with trio.fail_after(20):
        while (await sock.receive_json())["type"] != "update":
            pass


def test_a_hostile_config_is_confined_by_landlock_and_the_session_still_serves(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    data = tmp_path / "data"
    host_socket = tmp_path / "host.sock"
    assert not sleepers()
    with processes(tmp_path) as ps, socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(host_socket))  # a host service a dev server must not reach
        listener.listen()
        proc, port = ps.node(
            "node-0", data, secret, "--sandbox", "required", "--sandbox-mechanism", "landlock"
        )
        base = f"http://127.0.0.1:{port}"
        assert http("GET", f"{base}/readyz").json()["sandbox"] == "landlock"
        metrics = http("GET", f"{base}/metrics").body.decode()
        assert 'preview_node_sandbox{mechanism="landlock"} 1.0' in metrics
        other = http("POST", f"{base}/kontext/preview?wait=ready", {"files": app_files()}).json()
        assert other["status"] == "ready"
        other_port = listening_port(launcher_pids(other["sessionId"])[0])
        files = {
            **app_files(),
            "vite.config.js": fill(
                ATTACK,
                **node_targets(data, secret, other["sessionId"], proc.popen.pid, port),
                DEPS=str(Path("previewnode/runtime/node_modules").resolve()),
                OTHER_PORT=other_port,
                UNIX_SOCKET=str(host_socket),
            ),
        }
        made = http("POST", f"{base}/kontext/preview?wait=ready", {"files": files})
        assert made.status == 201, made.body
        s = made.json()
        assert s["status"] == "ready", s
        assert s["ignored"] == []  # the app's own config runs
        sid = s["sessionId"]
        read_back = http("GET", f"{base}/kontext/preview/{sid}/files").json()
        seen = json.loads(
            next(f["content"] for f in read_back["files"] if f["path"] == "containment.json")
        )
        refused = {
            # Landlock, filesystem: nothing outside its trees, and those read-only but its own
            "read_secret": "EACCES",
            "list_sessions": "EACCES",
            "read_other_session": "EACCES",
            "write_next_to_data_dir": "EACCES",
            "write_data_dir": "EACCES",
            "write_tmp": "EACCES",
            "write_root": "EACCES",
            "write_dependency_set": "EACCES",
            # Landlock, no rule for /proc: no process list, no socket paths, no environ
            "list_proc": "EACCES",
            "proc_net_unix": "EACCES",
            "see_node_process": "EACCES",
            "own_environ": "EACCES",
            # Landlock scope (ABI 6): no signal leaves its domain, not even to confine
            "signal_node": "EPERM",
            "signal_parent": "EPERM",
            # no capabilities (the node runs as root here)
            "setuid": "EPERM",
            # Landlock TCP rules: only its own port; seccomp: no UDP, no unix sockets
            "connect_node": "EACCES",
            "connect_router": "EACCES",
            "connect_other_session": "EACCES",
            "connect_unix": "EACCES",
            "udp": "EACCES",
            "listen_other_port": "EACCES",
        }
        assert {k: seen[k] for k in refused} == {k: f"refused: {v}" for k, v in refused.items()}
        assert seen["write_own_tmpdir"].startswith("allowed"), seen["write_own_tmpdir"]
        assert seen["unshare"] != 0  # seccomp: no namespaces
        # Not given (docs): metadata of any path is visible, only contents are not; pids
        # are the host's, and which exist can be told; the host name; no /proc/cpuinfo
        assert seen["stat_secret"].startswith("allowed"), seen["stat_secret"]
        assert seen["signal_missing_pid"] == "refused: ESRCH"
        assert "confine.py" in Path(f"/proc/{seen['ppid']}/cmdline").read_text()
        assert seen["hostname"] == socket.gethostname()
        assert seen["cpus"] == 0 and seen["parallelism"] >= 1
        assert not [k for k in seen["environment"] if k.startswith("PREVIEW")]
        assert SECRET not in json.dumps(seen)
        assert not (data / "pwned").exists() and not (tmp_path / "pwned").exists()
        assert not Path("/tmp/landlock-pwned").exists()
        # the session serves its page and an HMR update; the other one is unaffected
        assert http("GET", f"{base}/preview/{sid}/").status == 200
        trio.run(hmr_update_arrives, port, sid)
        assert http("GET", f"{base}/preview/{other['sessionId']}/").status == 200
        # the detached and the double-forked sleepers live only as long as the session
        assert len(poll_until(lambda: len(sleepers()) == 2 and sleepers(), 10)) == 2
        assert http("DELETE", f"{base}/kontext/preview/{sid}").status == 200
        poll_until(lambda: not sleepers(), 5)
        assert http("GET", f"{base}/preview/{other['sessionId']}/").status == 200


def test_a_ts_config_is_bundled_beside_it_not_into_the_shared_dependency_set(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    config = (
        'import fs from "node:fs";\nimport react from "@vitejs/plugin-react";\n'
        'const loaded: string = "yes";\nfs.writeFileSync("loaded.txt", loaded);\n'
        "export default { plugins: [react()] };\n"
    )
    with processes(tmp_path) as ps:
        _, port = ps.node(
            "node-0",
            tmp_path / "data",
            secret,
            "--sandbox",
            "required",
            "--sandbox-mechanism",
            "landlock",
        )
        files = {**app_files(), "vite.config.mts": config}  # ESM: bundled to a temp file
        base = f"http://127.0.0.1:{port}"
        s = http("POST", f"{base}/kontext/preview?wait=ready", {"files": files}).json()
        assert s["status"] == "ready", s
        assert http("GET", f"{base}/preview/{s['sessionId']}/src/App.jsx").status == 200
        listed = http("GET", f"{base}/kontext/preview/{s['sessionId']}/files").json()["files"]
        assert "loaded.txt" in [f["path"] for f in listed]  # the TS config ran


def test_confine_kills_every_descendant_when_its_command_exits(tmp_path: Path) -> None:
    """No PID namespace: the subreaper's sweep is what leaves nothing behind."""
    assert not sleepers()
    policy = landlock_policy_for(tmp_path)
    script = "sleep 7781 & (setsid sleep 7782 &) & exit 3"
    argv = confine_argv(sys.executable, policy, ["/bin/sh", "-c", script])
    t = time.monotonic()
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, timeout=20, check=False)
    assert done.returncode == 3, done.stderr  # the command's own status
    assert time.monotonic() - t < 5
    assert not sleepers()


def test_the_nodes_sigterm_to_the_group_leaves_nothing_without_a_cgroup(tmp_path: Path) -> None:
    """As `DevServer._stop` does: SIGTERM to the process group, wait for its leader, then
    SIGKILL the group at once. The leader is confine.py itself (the shell that set rlimits
    exec'd it), so it has swept the sleeper that left the group before the wait ends."""
    policy = landlock_policy_for(tmp_path)
    script = "(setsid sleep 7782 &) & exec sleep 7781"
    argv = prelude_then_exec(
        confine_argv(sys.executable, policy, ["/bin/sh", "-c", script]), "ulimit -c 0; "
    )
    child = subprocess.Popen(argv, cwd=tmp_path, stdin=subprocess.PIPE, start_new_session=True)
    try:
        poll_until(lambda: len(sleepers()) == 2, 5)
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        assert not sleepers()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(5)
        if child.stdin is not None:
            child.stdin.close()
        for line in sleepers():  # only this test's `sleep 7781/7782`
            os.kill(int(line.split()[0]), signal.SIGKILL)


def test_confine_stops_its_command_when_stdin_hangs_up(tmp_path: Path) -> None:
    """The node's end of stdin closing (the node gone) ends even a command that ignores it."""
    policy = landlock_policy_for(tmp_path)
    argv = confine_argv(sys.executable, policy, ["/bin/sh", "-c", "sleep 7781"])
    child = subprocess.Popen(argv, cwd=tmp_path, stdin=subprocess.PIPE, start_new_session=True)
    try:
        poll_until(lambda: sleepers(), 5)
        assert child.stdin is not None
        child.stdin.close()
        assert child.wait(10) == 128 + 15  # SIGTERM
        assert not sleepers()
    finally:
        if child.poll() is None:
            os.killpg(child.pid, 9)
            child.wait(5)


def test_confine_refuses_to_run_what_it_cannot_confine(tmp_path: Path) -> None:
    """A policy naming a port Landlock won't take fails the child, never runs it loose."""
    policy = {**landlock_policy_for(tmp_path), "port": 70000}
    marker = tmp_path / "ran"
    argv = confine_argv(sys.executable, policy, ["/bin/sh", "-c", f"touch {marker}"])
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, timeout=20, check=False)
    assert done.returncode == confine.EXIT_CONFINE_FAILED, done.stderr
    assert not marker.exists()


def landlock_policy_for(root: Path) -> dict[str, object]:
    from previewnode.sandbox import Mounts

    return landlock_policy(Mounts(root, root, ()), 0)

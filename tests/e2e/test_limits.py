"""Per-session limits, attacked for real: an uploaded vite.config.js that forks without
end, allocates without end, or spins on every core (CONTRACT §6: limits on memory,
processes and CPU). Each is bounded by its own cgroup; the node and the other sessions
carry on. Needs cgroup controllers the node may write (v1 here); elsewhere these skip,
and `/readyz` says `"limits": "rlimit"`.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from previewnode.limits import discover, parse_self_cgroup
from tests.support.cluster import app_files, http
from tests.support.processes import Proc, Processes, poll_until, processes
from tests.support.ring import SECRET

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(discover() is None, reason="no writable cgroup controllers here"),
]

FORKS = """
import fs from "node:fs";
import { spawn } from "node:child_process";
import react from "@vitejs/plugin-react";

export default async () => {
  const children = [];
  const outcomes = await Promise.all(Array.from({ length: 300 }, () => new Promise((resolve) => {
    const child = spawn("sleep", ["7778"], { stdio: "ignore" });
    child.on("spawn", () => { children.push(child); resolve("spawned"); });
    child.on("error", (e) => resolve(e.code));
  })));
  const count = (what) => outcomes.filter((o) => o === what).length;
  fs.writeFileSync("forks.json", JSON.stringify({
    spawned: count("spawned"), refused: count("EAGAIN"), other: outcomes.length - count("spawned") - count("EAGAIN"),
  }));
  for (const child of children) child.kill("SIGKILL");
  await new Promise((r) => setTimeout(r, 300));
  return { plugins: [react()] };
};
"""

HOG = """
import react from "@vitejs/plugin-react";
const kept = [];
for (let i = 0; i < 64; i++) kept.push(Buffer.alloc(32 * 1024 * 1024, 1));  // 2 GiB, touched
export default { plugins: [react()] };
"""

SPIN = """
import { Worker } from "node:worker_threads";
import react from "@vitejs/plugin-react";
for (let i = 0; i < 2; i++) new Worker("for (;;) {}", { eval: true }).unref();
export default { plugins: [react()] };
"""


def serves(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return int(resp.status) == 200


def node_with(tmp_path: Path, ps: Processes, *flags: str) -> tuple[str, Proc]:
    """A sandboxed node with `flags`: its base URL and its process."""
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    proc, port = ps.node("node-0", tmp_path / "data", secret, "--sandbox", "required", *flags)
    base = f"http://127.0.0.1:{port}"
    assert http("GET", f"{base}/readyz").json()["limits"] == "cgroup-v1"  # what this VM has
    return base, proc


def cpu_seconds(group: Path) -> float:
    """CPU time used so far by the processes in a v1 group (all their threads)."""
    total = 0
    for pid in (group / "cgroup.procs").read_text().split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def create(base: str, extra: dict[str, str], wait: str = "?wait=ready") -> dict[str, Any]:
    made = http("POST", f"{base}/kontext/preview{wait}", {"files": {**app_files(), **extra}})
    assert made.status == 201, made.body
    return made.json()


def test_a_fork_bomb_meets_the_process_limit_and_the_session_still_serves(
    tmp_path: Path,
) -> None:
    with processes(tmp_path) as ps:
        base, _ = node_with(tmp_path, ps, "--session-max-pids", "96")
        other = create(base, {})
        s = create(base, {"vite.config.js": FORKS})
        assert s["status"] == "ready", s
        files = http("GET", f"{base}/kontext/preview/{s['sessionId']}/files").json()["files"]
        forks = json.loads(next(f["content"] for f in files if f["path"] == "forks.json"))
        # Vite's own threads count too: fewer than 96 children, and the rest refused
        assert forks["spawned"] < 96 and forks["refused"] > 0, forks
        assert forks["spawned"] + forks["refused"] + forks["other"] == 300
        assert serves(f"{base}/preview/{s['sessionId']}/")
        assert serves(f"{base}/preview/{other['sessionId']}/")


def test_a_memory_hog_costs_only_its_own_session(tmp_path: Path) -> None:
    with processes(tmp_path) as ps:
        base, node = node_with(tmp_path, ps, "--session-memory-bytes", str(512 * 1024**2))
        other = create(base, {})
        hog = create(base, {"vite.config.js": HOG}, wait="")

        def stopped() -> dict[str, Any] | None:
            seen = http("GET", f"{base}/kontext/preview/{hog['sessionId']}").json()
            return seen if seen["status"] in ("failed", "idle") or seen.get("error") else None

        # killed inside its group, never ready; the node and the others go on
        status = poll_until(stopped, 60)
        assert status["status"] != "ready", status
        assert "exited with status 137" in node.log.read_text()  # SIGKILL: the OOM killer
        assert http("GET", f"{base}/healthz").status == 200
        assert serves(f"{base}/preview/{other['sessionId']}/")


def test_a_spinning_config_is_held_to_its_cpu_share(tmp_path: Path) -> None:
    with processes(tmp_path) as ps:
        base, node = node_with(tmp_path, ps, "--session-cpus", "0.25")
        s = create(base, {"vite.config.js": SPIN})
        assert s["status"] == "ready", s
        own = parse_self_cgroup(Path("/proc/self/cgroup").read_text())["cpu"].lstrip("/")
        group = Path("/sys/fs/cgroup/cpu", own, f"preview-node-{node.popen.pid}", s["sessionId"])
        first, t0 = cpu_seconds(group), time.monotonic()
        time.sleep(2.0)
        used = (cpu_seconds(group) - first) / (time.monotonic() - t0)
        # two threads spin: unbounded they would take both cores here
        assert 0.1 < used < 0.4, f"{used:.2f} CPUs used under a 0.25 share"
        assert serves(f"{base}/preview/{s['sessionId']}/")

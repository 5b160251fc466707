"""Node benchmark: one real `preview-node`, real Vite dev servers, the fixture React app.

What it measures (`.venv/bin/python bench/node_bench.py`, ~3-5 min):

1. create -> 201 latency (POST /kontext/preview, no wait): a burst of back-to-back
   creates (each also starts a Vite in the background, so they compete for the CPU),
   then paced creates (each on a quiet node: the previous session deleted after a pause);
   DELETE latency of both;
2. create -> ready (POST ?wait=ready, sequential), with a breakdown: the node's own
   spawn->serving histogram, a bare `node` start and the launcher's imports, and the
   first page load afterwards (index.html plus every module the page imports);
3. wake -> first byte: a node with `--idle-seconds 1`; a loaded session, once `idle`,
   gets GET /preview/{id}/ timed to its first response byte (and to the full page);
4. PSS/RSS of one Vite (at ready, after its page, after a 5 s settle) and of 10 running
   Vites that each served their page (/proc/PID/smaps_rollup over the Vite's process
   group);
5. many registered sessions: 300 creates on a node with `--max-running 2`: node RSS
   growth per session, disk per session, create p50 of the first 50 vs the last 50, and
   the node's restart time with them on disk.

Every phase runs its own node (own data dir, own port), one after the other. All traffic
stays on 127.0.0.1; every loop is bounded in count and time; every process started here
(the nodes, and any Vite of theirs still alive) is stopped on exit, error or Ctrl-C.
Results are printed as tables and written as JSON to bench/results/ (gitignored).
Targets are compared, never enforced: nothing here gates CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness.procfs import fs_type, loadavg
from bench.harness.run import Run, run_bench
from bench.harness.versions import first_line, git_commit, git_dirty, platform_versions
from bench.node.create import phase_create
from bench.node.fixture import PACKAGE_JSON, fixture_files
from bench.node.many import phase_many
from bench.node.nodes import REPO, STOP_GRACE, Nodes
from bench.node.ready import RUNTIME, phase_ready
from bench.node.report import TARGETS, headline, print_report
from bench.node.wake import phase_wake

PHASES = ("create", "ready", "wake", "many")
Phase = Callable[[Nodes, argparse.Namespace, dict[str, str]], dict[str, Any]]
STEPS: dict[str, Phase] = {
    "create": phase_create,
    "ready": phase_ready,
    "wake": phase_wake,
    "many": phase_many,
}


def versions() -> dict[str, str]:
    try:
        vite = json.loads((RUNTIME / "node_modules" / "vite" / "package.json").read_text())[
            "version"
        ]
    except (OSError, ValueError, KeyError):
        vite = "?"
    return {
        "node": first_line(["node", "--version"]),
        "vite": vite,
        **platform_versions(),
        "git_commit": git_commit(REPO),
        "git_dirty_previewnode": git_dirty(REPO, "previewnode/"),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--creates", type=int, default=100, help="burst creates (phase 1)")
    p.add_argument("--paced", type=int, default=30, help="paced creates (phase 1)")
    p.add_argument("--pause", type=float, default=1.0, help="seconds between paced creates")
    p.add_argument("--ready", type=int, default=15, help="create -> ready samples (phase 2)")
    p.add_argument("--vites", type=int, default=10, help="running Vites measured (phase 4)")
    p.add_argument("--wakes", type=int, default=8, help="wake samples (phase 3)")
    p.add_argument("--sessions", type=int, default=300, help="registered sessions (phase 5)")
    p.add_argument(
        "--only", choices=PHASES, action="append", help="run only these phases (repeatable)"
    )
    p.add_argument("--keep-temp", action="store_true", help="keep data dirs and node logs")
    p.add_argument(
        "--node-flag",
        action="append",
        default=[],
        help="a flag for every node, e.g. --node-flag=--sandbox=off (repeatable)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (RUNTIME / "node_modules" / "vite").exists() or not shutil.which("node"):
        print("needs `node` and the Vite runtime (npm ci --ignore-scripts in previewnode/runtime)")
        return 2
    return run_bench(
        lambda run: _run(args, run), "node-bench-", args.keep_temp, STOP_GRACE, "nodes"
    )


def _run(args: argparse.Namespace, run: Run) -> int:
    nodes = Nodes(run.procs, run.tmp, tuple(args.node_flag))
    files = fixture_files()
    phases = args.only or list(PHASES)
    print(f"node bench: {os.cpu_count()} cpus, load {loadavg()}, temp {run.tmp}", flush=True)
    result: dict[str, Any] = {
        "meta": {
            "timestamp": run.stamp,
            "cpus": os.cpu_count(),
            "loadavg_start": loadavg(),
            "data_dir_fs": fs_type(run.tmp),
            "fixture_files": sorted(files),
            "package_json": PACKAGE_JSON,
            "versions": versions(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "args": vars(args),
        },
        "targets": TARGETS,
    }
    for name in PHASES:
        if name in phases:
            t0 = time.monotonic()
            print(f"[{name}]", flush=True)
            result[name] = STEPS[name](nodes, args, files)
            result[name]["elapsed_s"] = round(time.monotonic() - t0, 1)
            result[name]["loadavg_after"] = loadavg()
    result["headline"] = [
        {"metric": a, "value": b, "target": c, "verdict": d} for a, b, c, d in headline(result)
    ]
    result["meta"]["elapsed_s"] = round(time.monotonic() - run.started, 1)
    result["meta"]["loadavg_end"] = loadavg()
    print_report(result)
    run.write(f"node-{run.stamp}.json", result)
    return 0

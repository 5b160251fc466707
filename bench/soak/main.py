"""Soak: two routers and two nodes under mixed traffic for `--seconds` (default 600).

What runs at once (`.venv/bin/python bench/soak.py`, `--seconds 60` for the CI length):

1. page loads as a browser does them (the page, then every module it imports), cycling
   through the long-lived sessions and alternating the routers;
2. one Vite HMR socket per long-lived session, through a router, which must get an
   `update` for every edit within the deadline (reconnects allowed, counted);
3. an edit (PUT of `src/App.jsx` with a unique marker) per session every few seconds;
4. creates and deletes of extra sessions (page, socket, DELETE: the socket must close and
   the ID answer 410; no dev server may outlive its session);
5. every few seconds, the FDs and RSS of each router, each node and each dev server.

It reports requests, errors by kind, latencies, updates pushed/seen/missed, reconnects,
creates/deletes, per-process FDs and RSS over time, and the goals with ok/MISS (0 errors,
0 missed updates, FDs flat, RSS growth <= 15 MiB per router and <= 40 MiB per node); the
JSON goes to bench/results/. All traffic stays on 127.0.0.1; every loop is bounded in
count and time; every process started here is stopped on exit, error or Ctrl-C. The goals
are printed, never enforced here: `tests/e2e/test_soak.py` runs the short version and
asserts them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import trio

from bench.harness.cpu import machine_times, proc_ticks
from bench.harness.procfs import group_members, loadavg
from bench.harness.run import Run, run_bench
from bench.harness.versions import first_line, git_commit, git_dirty, platform_versions
from bench.node.nodes import REPO
from bench.node.ready import RUNTIME
from bench.soak.edits import Ledger
from bench.soak.goals import FD_TOLERANCE, passed, process_stats, verdicts
from bench.soak.report import print_report
from bench.soak.sampler import Sampler
from bench.soak.stack import public_host, start_stack
from bench.soak.tally import Tally
from bench.soak.traffic import Plan, soak
from tests.support.processes import Processes

STOP_GRACE = 20.0  # a node stops its Vites first


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=600.0, help="traffic duration")
    p.add_argument("--sessions", type=int, default=4, help="long-lived sessions")
    p.add_argument("--edit-every", type=float, default=5.0, help="seconds between edits")
    p.add_argument("--update-deadline", type=float, default=4.0, help="PUT -> update, seconds")
    p.add_argument("--churn-every", type=float, default=10.0, help="seconds between creates")
    p.add_argument("--browsers", type=int, default=2, help="concurrent page-load loops")
    p.add_argument("--page-pause", type=float, default=0.5, help="seconds between page loads")
    p.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--warmup", type=float, help="seconds before the FD/RSS baseline "
                   "(default: a sixth of the run, 10 to 60 s)")  # fmt: skip
    p.add_argument("--fd-tolerance", type=int, default=FD_TOLERANCE, help="FDs a process may gain")
    p.add_argument("--node-flag", action="append", default=[], help="a flag for both nodes")
    p.add_argument("--router-flag", action="append", default=[], help="a flag for both routers")
    p.add_argument("--keep-temp", action="store_true", help="keep data dirs and logs")
    args = p.parse_args(argv)
    if args.warmup is None:
        args.warmup = min(60.0, max(10.0, args.seconds / 6))
    return args


def run_soak(args: argparse.Namespace, procs: Processes, tmp: Path) -> dict[str, Any]:
    """Start the stack under `procs`, run the soak, judge it: the result dict (the caller
    prints or asserts it; `procs` stops every process when its block ends)."""
    meta: dict[str, Any] = {
        "seconds": args.seconds,
        "sessions": args.sessions,
        "warmup_s": args.warmup,
        "cpus": os.cpu_count(),
        "loadavg_start": loadavg(),
        "args": vars(args),
        "versions": {
            "node": first_line(["node", "--version"]),
            **platform_versions(),
            "git_commit": git_commit(REPO),
            "git_dirty": git_dirty(REPO, "."),
        },
    }
    c = start_stack(procs, tmp, args.node_flag, args.router_flag)
    fixed = {f"router-{i}": r.proc.pid for i, r in enumerate(c.routers)}
    fixed |= {name: n.proc.pid for name, n in c.nodes.items()}
    sampler = Sampler(fixed, {name: n.data for name, n in c.nodes.items()})
    tally, ledger = Tally(), Ledger(args.update_deadline)
    plan = Plan(
        seconds=args.seconds,
        sessions=args.sessions,
        edit_every=args.edit_every,
        update_deadline=args.update_deadline,
        churn_every=args.churn_every,
        browsers=args.browsers,
        page_pause=args.page_pause,
        sample_every=args.sample_every,
    )
    cpu0, ours0 = machine_times(), _our_ticks(fixed, sampler)
    run = trio.run(soak, plan, [r.port for r in c.routers], public_host(c), tally, ledger, sampler)
    cpu1, ours1 = machine_times(), _our_ticks(fixed, sampler)
    meta["loadavg_end"] = loadavg()
    traffic, updates = tally.summary(), ledger.summary()
    stats = {name: process_stats(sampler.samples, name, args.warmup) for name in _names(sampler)}
    goals = verdicts(traffic, updates, stats, sampler.kinds, args.fd_tolerance)
    busy, total = cpu1[0] - cpu0[0], max(cpu1[1] - cpu0[1], 1)  # jiffies, all cores
    machine, ours = 100 * busy / total, 100 * (ours1 - ours0) / total
    return {
        "meta": meta,
        "run": run,
        "traffic": traffic,
        "updates": updates,
        "processes": stats,
        "kinds": sampler.kinds,
        "samples": sampler.samples,
        "cpu": {  # shares of all cores over setup and traffic
            "machine_busy_pct": round(machine, 1),
            "ours_pct": round(ours, 1),
            "foreign_pct": round(machine - ours, 1),
        },
        "goals": goals,
        "passed": passed(goals),
    }


def _names(sampler: Sampler) -> list[str]:
    seen: dict[str, None] = {}
    for s in sampler.samples:
        for name in s["procs"]:
            seen.setdefault(name, None)
    return list(seen)


def _our_ticks(fixed: dict[str, int], sampler: Sampler) -> int:
    """CPU ticks (USER_HZ, as /proc/stat counts) of the routers and nodes with the dev
    servers they reaped, the live dev servers' process groups, and this process."""
    ticks = sum(proc_ticks(pid, children=True) for pid in fixed.values())
    for leader in sampler.vites().values():
        with contextlib.suppress(OSError):
            ticks += sum(proc_ticks(p) for p in group_members(os.getpgid(leader)))
    return ticks + proc_ticks(os.getpid())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (RUNTIME / "node_modules" / "vite").exists() or not shutil.which("node"):
        print("needs `node` and the Vite runtime (npm ci --ignore-scripts in previewnode/runtime)")
        return 2
    return run_bench(
        lambda run: _run(args, run), "soak-", args.keep_temp, STOP_GRACE, "the cluster", REPO
    )


def _run(args: argparse.Namespace, run: Run) -> int:
    print(f"soak: {args.seconds:g} s, {os.cpu_count()} cpus, load {loadavg()}, temp {run.tmp}",
          flush=True)  # fmt: skip
    result = run_soak(args, run.procs, run.tmp)
    result["meta"]["timestamp"] = run.stamp
    result["meta"]["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    result["meta"]["elapsed_s"] = round(time.monotonic() - run.started, 1)
    print_report(result)
    run.write(f"soak-{run.stamp}.json", result)
    return 0 if result["passed"] else 1

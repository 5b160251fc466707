"""Placement at scale, simulated: no sockets, the router's real ring and placement code.

`nodes` nodes, `sessions` creates through each placement policy: the plain ring, power
of two choices alone (the router before bounded loads), and bounded loads
(router/placement.py); with the affinity/sessionId mix and with random keys only; and
the mix again with stale loads. Every run sees the same creates, the same draining nodes
(from a quarter of the way) and the same ring change halfway (a node added, one removed
whose sessions are created again). The bounded run with the mix also routes every live
ID through `router.routing.session_nodes` across the change. Prints a table and writes
`bench/results/placement-<ts>.json`; the runs together are bounded in time (`--budget`).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

from bench.harness.run import Run, progress, run_bench
from bench.harness.versions import git_commit, git_dirty, platform_versions
from bench.place.ids import id_moves
from bench.place.policies import POLICIES, SUMMED
from bench.place.report import print_tables
from bench.place.rings import timings
from bench.place.simulate import Settings, Timeline, run
from bench.place.workload import Mix
from previewcore.session_id import Keys
from router.placement import EPSILON
from router.ring import Node, Ring

REPO = Path(__file__).resolve().parents[2]
# (policy, with the affinity/sessionId mix, what the router knows of the loads)
RUNS = [
    ("ring", True, "fresh"),
    ("p2c", True, "fresh"),
    ("bounded", True, "fresh"),
    ("ring", False, "fresh"),
    ("p2c", False, "fresh"),
    ("bounded", False, "fresh"),
    ("bounded", True, "routers"),
    ("bounded", True, "stale"),
    ("bounded-sum", True, "fresh"),  # only with --only bounded-sum
]
DEFAULT = frozenset(POLICIES) - SUMMED


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--sessions", type=int, default=1_000_000, help="creates per run")
    p.add_argument("--affinity", type=float, default=0.30, help="share with an affinityKey")
    p.add_argument("--session-ids", type=float, default=0.05, help="share with a sessionId")
    p.add_argument("--projects", type=int, default=20_000, help="distinct affinity keys")
    p.add_argument("--zipf", type=float, default=1.0, help="project popularity 1/k^s")
    p.add_argument("--draining", type=float, default=0.02, help="share of nodes drained")
    p.add_argument("--max-sessions", type=int, default=2000, help="a node's N in sessions=S/N")
    p.add_argument("--max-running", type=int, default=8, help="a node's M in running=R/M")
    p.add_argument(
        "--running-window", type=int, default=0, help="creates a new Vite stays running "
        "(default nodes x max-running / 2: half the Vites busy on average)",
    )  # fmt: skip
    p.add_argument("--routers", type=int, default=8, help="routers in the many-routers run")
    p.add_argument("--stale-every", type=int, default=10_000, help="K for the stale run")
    p.add_argument("--epsilon", type=float, default=EPSILON)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--budget", type=float, default=180.0,
        help="seconds for all runs: each gets an equal share of what is left, and one that "
        "hits it stops early, marked 'cut short'",
    )  # fmt: skip
    p.add_argument("--only", action="append", choices=sorted(POLICIES), help="only these policies")
    args = p.parse_args(argv)
    args.running_window = args.running_window or args.nodes * args.max_running // 2
    args.only = frozenset(args.only or DEFAULT)
    return args


def timeline(args: argparse.Namespace) -> Timeline:
    rng = random.Random(args.seed)
    names = [f"node-{i}" for i in range(args.nodes)]
    url = {n: f"http://10.0.{i // 256}.{i % 256}:9000" for i, n in enumerate(names)}
    drained = set(rng.sample(names, round(args.nodes * args.draining)))
    removed = rng.choice([n for n in names if n not in drained])
    added = f"node-{args.nodes}"
    start = [Node(n, url[n]) for n in names]
    after_drain = [Node(n, url[n], "draining" if n in drained else "active") for n in names]
    grown = [*after_drain, Node(added, "http://10.1.0.0:9000")]
    return Timeline(
        start=Ring(start),
        drained=Ring(after_drain),
        grown=Ring(grown),
        final=Ring(n for n in grown if n.name != removed),
        added=added,
        removed=removed,
        drain_at=args.sessions // 4,
        change_at=args.sessions // 2,
    )


def _run(args: argparse.Namespace, bench: Run) -> int:
    deadline = time.monotonic() + args.budget
    mix = Mix(args.affinity, args.session_ids, args.projects, args.zipf)
    random_only = Mix(0.0, 0.0, args.projects, args.zipf)
    progress(f"building rings ({args.nodes} nodes)")
    t = timeline(args)
    rings = timings(list(t.start.nodes.values()))
    keys = Keys((b"placement-bench-secret-" + b"x" * 32,))
    result: dict[str, Any] = {"runs": [], "rings": rings}
    chosen = [r for r in RUNS if r[0] in args.only]
    for index, (policy, with_mix, known) in enumerate(chosen):
        s = Settings(
            sessions=args.sessions,
            max_sessions=args.max_sessions,
            max_running=args.max_running,
            window=args.running_window,
            seed=args.seed,
            seconds=max(1.0, (deadline - time.monotonic()) / (len(chosen) - index)),
            stale_every=args.stale_every if known == "stale" else 0,
            routers=args.routers if known == "routers" else 1,
            summed=policy in SUMMED,
        )
        ids = policy == "bounded" and with_mix and known == "fresh"
        shares = mix.label() if with_mix else random_only.label()
        progress(f"{policy}, {shares}, loads: {s.loads_label()}")
        check = id_moves(keys, args.seed) if ids else None
        out = run(POLICIES[policy](args.epsilon), t, mix if with_mix else random_only, s, check)
        out |= {"policy": policy, "mix": shares}
        if ids:
            result["ids"] = out["change"]
        result["runs"].append(out)
    result["meta"] = {
        "nodes": args.nodes,
        "sessions": args.sessions,
        "mix": mix.label(),
        "projects": args.projects,
        "zipf": args.zipf,
        "draining": len(t.drained.nodes) - len(t.drained.active),
        "drain_at": t.drain_at,
        "change_at": t.change_at,
        "added": t.added,
        "removed": t.removed,
        "max_sessions": args.max_sessions,
        "max_running": args.max_running,
        "running_window": args.running_window,
        "stale_every": args.stale_every,
        "routers": args.routers,
        "budget_s": args.budget,
        "epsilon": args.epsilon,
        "seed": args.seed,
        **platform_versions(),
        "git_commit": git_commit(REPO),
        "git_dirty_router": git_dirty(REPO, "router/"),
    }
    print_tables(result)
    bench.write(f"placement-{bench.stamp}.json", result)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    code = run_bench(lambda bench: _run(args, bench), "placement-bench-", False, 1.0, "the run")
    print(f"total {time.monotonic() - started:.0f} s")
    return code

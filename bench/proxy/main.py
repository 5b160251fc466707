"""Proxy benchmark: direct upstream vs nginx vs preview-router, one worker each, one machine.

What it compares, in one run (`.venv/bin/python bench/proxy_bench.py`):

- targets: (a) the upstream itself, (b) Debian's nginx as a path proxy (one worker,
  upstream keep-alive), (c) preview-router (`--workers 1`), or one router per source tree
  (`--router-tree NAME=PATH`, repeatable), measured in turn within each cell;
- HTTP: a 1 KiB and a 100 KiB static file at c=1 and c=32, driven by `h2load --h1`
  (req/s, mean, p50/p99 from h2load's per-request `--log-file`), plus the CPU each
  proxy process spent per request (/proc/PID/stat utime+stime over the measured run);
- WebSocket: median/p99 round trip of sequential 64-byte messages through each target.

The upstream is fast on purpose: a second nginx serves the files, a small trio-websocket
process echoes. Servers under test are pinned to core 0, upstreams and load generators
to core 1 (`taskset`), so the proxy never competes with its own load.

`--profile` instead runs the router under pyinstrument at c=32 on the 1 KiB file and
writes a text profile plus a summary of where the time goes (h11, send_all, logging,
metrics, routing, ...).

All traffic stays on 127.0.0.1; every load run is bounded in request count and in time;
every process started here is stopped on exit, error, Ctrl-C or SIGTERM. Results are
printed as tables and written as JSON to bench/results/ (gitignored). Nothing gates CI.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.harness.pinning import pin_self
from bench.harness.run import Run, run_bench
from bench.harness.versions import first_line, git_commit, git_dirty, platform_versions
from bench.proxy.compare import run_compare
from bench.proxy.layout import FILES, prepare
from bench.proxy.profile import run_profile
from bench.proxy.report import print_profile, print_tables
from bench.proxy.servers import REPO
from bench.proxy.websocket import ws_echo_server

CONCURRENCY = (1, 32)


def versions() -> dict[str, str]:
    return {
        "nginx": first_line(["nginx", "-v"]),
        "h2load": first_line(["h2load", "--version"]),
        **platform_versions(),
        "git_commit": git_commit(REPO),
        "git_dirty_router": git_dirty(REPO, "router/"),
    }


def router_trees(specs: list[str] | None) -> dict[str, Path]:
    """Router target -> source tree: `router` -> this repo, or `router:NAME` -> PATH."""
    if not specs:
        return {"router": REPO}
    trees: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        tree = Path(path).expanduser().resolve()
        if not sep or not name or not (tree / "router" / "__main__.py").is_file():
            raise SystemExit(f"--router-tree {spec}: want NAME=PATH, PATH holding router/")
        trees[f"router:{name}"] = tree
    return trees


def tree_meta(trees: dict[str, Path]) -> dict[str, Any]:
    """Per tree: path, commit, and which `router` package `python` imports from there."""
    out = {}
    for target, tree in trees.items():
        probe = subprocess.run(
            [sys.executable, "-c", "import router; print(router.__file__)"],
            cwd=tree, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        out[target] = {
            "path": str(tree),
            "git_commit": git_commit(tree),
            "git_dirty_router": git_dirty(tree, "router/"),
            "router_module": probe.stdout.strip() or probe.stderr.strip()[-300:],
        }
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=4.0, help="measured seconds per HTTP run")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per HTTP run")
    p.add_argument("--ws-messages", type=int, default=3000, help="WebSocket round trips per target")
    p.add_argument(
        "--retry-noisy", type=int, default=1, help="re-measure a NOISY HTTP run up to N times"
    )
    p.add_argument("--server-core", type=int, default=0, help="core for nginx proxy and router")
    p.add_argument("--load-core", type=int, default=1, help="core for upstreams and h2load")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument(
        "--router-tree",
        action="append",
        metavar="NAME=PATH",
        help="measure the router of this source tree (repeatable; the first is the baseline "
        "of the tree comparison); default: this tree only",
    )
    p.add_argument(
        "--rounds", type=int, default=1, help="measure every target N times per cell, in turn"
    )
    p.add_argument(
        "--file", dest="files", action="append", choices=list(FILES), help="only these files"
    )
    p.add_argument(
        "--concurrency", type=int, action="append", help="only these concurrencies (repeatable)"
    )
    p.add_argument("--profile", action="store_true", help="profile the router instead")
    p.add_argument("--profile-seconds", type=float, default=10.0)
    p.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy binary (profile)")
    p.add_argument(
        "--router-log-level",
        default="warning",
        help="router --log-level (info: one JSON access line per request, to a file)",
    )
    p.add_argument("--keep-temp", action="store_true", help="keep configs and logs")
    p.add_argument("--ws-echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.no_pin or (os.cpu_count() or 1) < 2:
        args.server_core = args.load_core = None
    args.files = args.files or list(FILES)
    args.concurrency = args.concurrency or list(CONCURRENCY)
    args.rounds = max(1, args.rounds)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ws_echo_server:
        ws_echo_server(args.ws_echo_server)
        return 0
    missing = [t for t in ("nginx", "h2load", "taskset") if not shutil.which(t)]
    missing = [t for t in missing if not (t == "nginx" and Path("/usr/sbin/nginx").exists())]
    if missing:
        print(f"missing: {', '.join(missing)} (apt-get install nginx nghttp2-client util-linux)")
        return 2
    trees = router_trees(None if args.profile else args.router_tree)
    pin_self(args.load_core)  # the WebSocket client runs here
    return run_bench(
        lambda run: _run(args, run, trees), "proxy-bench-", args.keep_temp, 15.0, "servers"
    )


def _run(args: argparse.Namespace, run: Run, trees: dict[str, Path]) -> int:
    pinning = (
        f"nginx proxy and router on core {args.server_core}; upstream nginx, ws echo, "
        f"h2load and the WebSocket client on core {args.load_core}"
        if args.server_core is not None
        else "no pinning"
    )
    layout = prepare(run.tmp, list(trees))
    print(f"proxy bench: {pinning}; temp {run.tmp}")
    meta: dict[str, Any] = {
        "timestamp": run.stamp,
        "pinning": pinning,
        "server_core": args.server_core,
        "load_core": args.load_core,
        "cpus": os.cpu_count(),
        "seconds_per_run": args.seconds,
        "warmup_seconds": args.warmup,
        "versions": versions(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    if args.profile:
        result: dict[str, Any] = {"meta": meta, **run_profile(args, run.procs, layout, run.stamp)}
        print_profile(result)
        name = f"profile-{run.stamp}.json"
    else:
        if list(trees) != ["router"]:
            meta["rounds"] = args.rounds
            meta["router_trees"] = tree_meta(trees)
        result = {"meta": meta, **run_compare(args, run.procs, layout, trees)}
        print_tables(result)
        name = f"proxy-{run.stamp}.json"
    run.write(name, result)
    return 0

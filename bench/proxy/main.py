"""Proxy benchmark: direct upstream vs nginx, HAProxy, configurable-http-proxy and
preview-router, one worker each (unless asked), one machine.

What it compares, in one run (`.venv/bin/python bench/proxy_bench.py`):

- targets: (a) the upstream itself, (b) Debian's nginx as a path proxy (one worker,
  upstream keep-alive), (c) Debian's HAProxy (one thread, `http-reuse always`), (d) npm's
  configurable-http-proxy (one node process), (e) preview-router (`--workers 1`), or one
  router per source tree (`--router-tree NAME=PATH`) and worker count (`--router-workers
  N`), all repeatable, measured in turn within each cell; `--target` picks some of them;
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
from bench.proxy import targets
from bench.proxy.compare import run_compare
from bench.proxy.layout import FILES, prepare
from bench.proxy.profile import run_profile
from bench.proxy.report import print_profile, print_tables
from bench.proxy.servers import REPO
from bench.proxy.targets import RouterTarget
from bench.proxy.websocket import ws_echo_server

CONCURRENCY = (1, 32)


def versions(references: dict[str, str]) -> dict[str, str]:
    out = {
        "nginx": first_line(["nginx", "-v"]),
        "h2load": first_line(["h2load", "--version"]),
        **platform_versions(),
        "git_commit": git_commit(REPO),
        "git_dirty_router": git_dirty(REPO, "router/"),
    }
    if "haproxy" in references:
        out["haproxy"] = first_line([references["haproxy"], "-v"])
    if "chp" in references:
        out["node"] = first_line([references["chp"], "--version"])
        out["configurable-http-proxy"] = first_line([references["chp"], str(targets.CHP_BIN), "-V"])
    return out


def router_trees(specs: list[str] | None) -> dict[str, Path]:
    """Tree name -> source tree: "" -> this repo, or NAME -> PATH per `--router-tree`."""
    if not specs:
        return {"": REPO}
    trees: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        tree = Path(path).expanduser().resolve()
        if not sep or not name or not (tree / "router" / "__main__.py").is_file():
            raise SystemExit(f"--router-tree {spec}: want NAME=PATH, PATH holding router/")
        trees[name] = tree
    return trees


def router_meta(routers: list[RouterTarget]) -> dict[str, Any]:
    """Per router target: path, commit, workers, and which `router` package `python`
    imports from its tree."""
    out = {}
    for r in routers:
        probe = subprocess.run(
            [sys.executable, "-c", "import router; print(router.__file__)"],
            cwd=r.tree, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        out[r.name] = {
            "path": str(r.tree),
            "workers": r.workers,
            "git_commit": git_commit(r.tree),
            "git_dirty_router": git_dirty(r.tree, "router/"),
            "router_module": probe.stdout.strip() or probe.stderr.strip()[-300:],
        }
    return out


def chosen(args: argparse.Namespace) -> tuple[bool, dict[str, str], list[RouterTarget]] | str:
    """(run direct?, reference proxy -> binary, routers), or why the run cannot start."""
    binaries = {p: b for p in targets.REFERENCES if (b := targets.binary(p))}
    run, missing = targets.select(args.targets, set(binaries))
    notes = [f"{p}: not installed ({targets.INSTALL[p]})" for p in missing]
    if args.targets and missing:
        return "asked for but missing:\n  " + "\n  ".join(notes)
    for note in notes:
        print(f"skipping {note}")
    references = {p: binaries[p] for p in targets.REFERENCES if p in run}
    routers = targets.router_targets(router_trees(args.router_tree), args.router_workers)
    return "direct" in run, references, routers if "router" in run else []


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=4.0, help="measured seconds per HTTP run")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per HTTP run")
    p.add_argument("--ws-messages", type=int, default=3000, help="WebSocket round trips per target")
    p.add_argument(
        "--retry-noisy", type=int, default=1, help="re-measure a NOISY HTTP run up to N times"
    )
    p.add_argument(
        "--target",
        dest="targets",
        action="append",
        choices=targets.SELECTABLE,
        help="measure only these targets (repeatable; `router` is every router target); "
        "default: all that are installed",
    )
    p.add_argument(
        "--router-workers",
        "--workers",
        dest="router_workers",
        type=int,
        action="append",
        metavar="N",
        help="router --workers N (repeatable: one router target per count, router:wN); default 1",
    )
    p.add_argument("--server-core", type=int, default=0, help="core for the proxies under test")
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
    if any(n < 1 for n in args.router_workers or []):
        p.error("--router-workers: at least 1")
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
    if args.profile:
        picked: tuple[bool, dict[str, str], list[RouterTarget]] | str = (False, {}, [])
    else:
        picked = chosen(args)
    if isinstance(picked, str):
        print(picked)
        return 2
    pin_self(args.load_core)  # the WebSocket client runs here
    return run_bench(
        lambda run: _run(args, run, *picked), "proxy-bench-", args.keep_temp, 15.0, "servers"
    )


def _run(
    args: argparse.Namespace,
    run: Run,
    direct: bool,
    references: dict[str, str],
    routers: list[RouterTarget],
) -> int:
    pinning = (
        f"proxies under test (every router worker too) on core {args.server_core}; "
        f"upstream nginx, ws echo, h2load and the WebSocket client on core {args.load_core}"
        if args.server_core is not None
        else "no pinning"
    )
    proxies = ["router"] if args.profile else [*references, *(r.name for r in routers)]
    layout = prepare(run.tmp, proxies)
    print(f"proxy bench: {pinning}; temp {run.tmp}")
    meta: dict[str, Any] = {
        "timestamp": run.stamp,
        "pinning": pinning,
        "server_core": args.server_core,
        "load_core": args.load_core,
        "cpus": os.cpu_count(),
        "seconds_per_run": args.seconds,
        "warmup_seconds": args.warmup,
        "versions": versions(references),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    if args.profile:
        result: dict[str, Any] = {"meta": meta, **run_profile(args, run.procs, layout, run.stamp)}
        print_profile(result)
        name = f"profile-{run.stamp}.json"
    else:
        meta["rounds"] = args.rounds
        meta["targets"] = ["direct"] * direct + [*references, *(r.name for r in routers)]
        meta["routers"] = router_meta(routers)
        result = {"meta": meta, **run_compare(args, run.procs, layout, direct, references, routers)}
        print_tables(result)
        name = f"proxy-{run.stamp}.json"
    run.write(name, result)
    return 0

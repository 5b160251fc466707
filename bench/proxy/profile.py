"""`--profile`: the router alone (plus the upstream) at c=32 on the 1 KiB file, first under
pyinstrument (deterministic hook: exact stacks, inflates call-heavy code), then, if
available, under py-spy (external sampler: pauses the process per sample, unbiased shares).
Writes the text profile, the pyinstrument session and py-spy's raw stacks to bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
from typing import Any

from bench.harness import h2load
from bench.harness.pinning import taskset
from bench.harness.run import RESULTS
from bench.proxy.layout import HOST, Layout
from bench.proxy.servers import REPO, start_router, start_upstreams
from bench.proxy.stacks import pyinstrument_samples, pyspy_samples, summarize
from bench.proxy.targets import RouterTarget
from tests.support.processes import Processes

TARGET = "router"
ROUTER = RouterTarget(TARGET, REPO, 1)


def _load_router(args: argparse.Namespace, url: str, seconds: float) -> dict[str, Any]:
    """Probe, then a c=32 run of about `seconds` (bounded in count and time)."""
    c = 32
    probe = h2load.parse(h2load.run(url, 2000, c, args.load_core, None, 60))
    n = h2load.sized(probe["req_per_s"], seconds, c)
    out = h2load.parse(h2load.run(url, n, c, args.load_core, None, seconds * 5 + 30))
    out["served"] = 2000 + out["requests"]["succeeded"]
    return out


def run_profile(
    args: argparse.Namespace, procs: Processes, layout: Layout, stamp: str
) -> dict[str, Any]:
    start_upstreams(procs, layout, args.load_core)
    url = f"http://{HOST}:{layout.ports[TARGET]}{layout.http_path('1k')}"
    RESULTS.mkdir(exist_ok=True)
    result: dict[str, Any] = {"load": "h2load --h1 -c 32 -t 1, 1 KiB file"}
    result["pyinstrument"] = _pyinstrument(args, procs, layout, url, stamp)
    if not args.py_spy:
        print("  py-spy not found (pip install py-spy, or --py-spy PATH): skipping the sampler")
        return result
    spy = _py_spy(args, procs, layout, url, stamp)
    if spy is not None:
        result["py_spy"] = spy
    return result


def _pyinstrument(
    args: argparse.Namespace, procs: Processes, layout: Layout, url: str, stamp: str
) -> dict[str, Any]:
    session_path = layout.tmp / "router.pyisession"
    prefix = ("-m", "pyinstrument", "-r", "pyisession", "-o", str(session_path))
    router = start_router(procs, layout, ROUTER, args.router_log_level, args.server_core, prefix)
    print(f"  pyinstrument: c=32 on the 1 KiB file for ~{args.profile_seconds}s")
    load = _load_router(args, url, args.profile_seconds)
    code = procs.stop(router, signal.SIGINT, grace=60)
    if not session_path.exists():
        raise RuntimeError(f"pyinstrument wrote no session (exit {code}):\n{router.tail()}")
    from pyinstrument.renderers import ConsoleRenderer
    from pyinstrument.session import Session

    session = Session.load(session_path)
    pyi = summarize(pyinstrument_samples(session), load["served"])
    pyi["req_per_s_under_profiler"] = load["req_per_s"]
    text_path = RESULTS / f"profile-{stamp}.txt"
    show = r".*/(h11|router|proxycore|previewcore|logging|prometheus_client)/.*"
    options = {"filter_threshold": 0.003, "show_regex": show}
    tree = ConsoleRenderer(processor_options=options, time="percent_of_total").render(session)
    flat = ConsoleRenderer(flat=True, show_all=True, time="percent_of_total").render(session)
    text_path.write_text(tree + "\n\nFlat (self time, all frames):\n" + flat)
    shutil.copy(session_path, RESULTS / f"profile-{stamp}.pyisession")
    pyi["text_profile"] = str(text_path)
    pyi["session"] = str(RESULTS / f"profile-{stamp}.pyisession")
    return pyi


def _py_spy(
    args: argparse.Namespace, procs: Processes, layout: Layout, url: str, stamp: str
) -> dict[str, Any] | None:
    router = start_router(procs, layout, ROUTER, args.router_log_level, args.server_core)
    _load_router(args, url, 1.0)  # warm-up
    raw_path = RESULTS / f"profile-{stamp}.pyspy.txt"
    print(f"  py-spy: c=32 on the 1 KiB file for ~{args.profile_seconds}s")
    argv = [*taskset(args.load_core), args.py_spy, "record", "--pid", str(router.pid),
            "--format", "raw", "--idle", "--rate", "200",
            "--duration", str(int(args.profile_seconds)), "-o", str(raw_path)]  # fmt: skip
    spy = procs.start(argv, "py-spy", cwd=REPO)
    load = _load_router(args, url, args.profile_seconds)
    with contextlib.suppress(subprocess.TimeoutExpired):
        spy.popen.wait(args.profile_seconds + 30)
    procs.stop(spy, signal.SIGINT)
    procs.stop(router)
    if not raw_path.exists():
        print(f"  py-spy wrote nothing:\n{spy.tail()}")
        return None
    ps = summarize(pyspy_samples(raw_path.read_text()), load["served"])
    ps["req_per_s_under_profiler"] = load["req_per_s"]
    ps["raw"] = str(raw_path)
    return ps

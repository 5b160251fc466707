"""Starting what the proxy benchmark measures: the upstreams (nginx with the files, a
WebSocket echo), nginx as the proxy, and one router per source tree.

A router runs as `python -m router` with its tree as the working directory, so that tree's
packages are the ones imported (the current directory comes first on `sys.path`).
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness.pinning import taskset
from bench.harness.procfs import children_of
from bench.proxy import nginx
from bench.proxy.layout import HOST, Layout
from tests.support.processes import Proc, Processes, wait_port

REPO = Path(__file__).resolve().parents[2]
ENTRY = REPO / "bench" / "proxy_bench.py"


@dataclass
class Servers:
    upstream: Proc
    ws: Proc
    nginx: Proc | None = None
    routers: dict[str, Proc] = field(default_factory=dict)


def start_nginx(procs: Processes, layout: Layout, tag: str, conf: str, core: int | None) -> Proc:
    path = layout.tmp / f"{tag}.conf"
    path.write_text(conf)
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    argv = [binary, "-p", str(layout.tmp), "-e", str(layout.tmp / f"{tag}-early.log"),
            "-c", str(path)]  # fmt: skip
    return procs.start([*taskset(core), *argv], f"nginx-{tag}", cwd=REPO)


def start_upstreams(procs: Processes, layout: Layout, load_core: int | None) -> Servers:
    up = start_nginx(procs, layout, "upstream", nginx.upstream_conf(layout), load_core)
    argv = [sys.executable, str(ENTRY), "--ws-echo-server", str(layout.ports["ws"])]
    ws = procs.start([*taskset(load_core), *argv], "ws-echo", cwd=REPO)
    wait_port(layout.ports["upstream"], proc=up)
    wait_port(layout.ports["ws"], proc=ws)
    return Servers(up, ws)


def start_proxy_nginx(procs: Processes, layout: Layout, core: int | None) -> Proc:
    proxy = start_nginx(procs, layout, "proxy", nginx.proxy_conf(layout), core)
    wait_port(layout.ports["nginx"], proc=proxy)
    return proxy


def router_argv(layout: Layout, target: str, log_level: str) -> list[str]:
    return [
        "-m", "router",
        "--listen", f"{HOST}:{layout.ports[target]}",
        "--ring", str(layout.ring),
        "--secret-file", str(layout.secret),
        "--log-level", log_level,
        "--workers", "1",
    ]  # fmt: skip


def start_router(
    procs: Processes,
    layout: Layout,
    target: str,
    tree: Path,
    log_level: str,
    core: int | None,
    prefix: tuple[str, ...] = (),
) -> Proc:
    """`python [prefix] -m router ...` from `tree`, once it listens."""
    argv = [*taskset(core), sys.executable, *prefix, *router_argv(layout, target, log_level)]
    router = procs.start(argv, target.replace(":", "-"), cwd=tree)
    wait_port(layout.ports[target], proc=router)
    return router


def worker_pid(s: Proc) -> int:
    """The nginx worker (the process doing the work) under a master."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        kids = children_of(s.pid)
        if kids:
            return kids[0]
        time.sleep(0.05)
    raise RuntimeError(f"no worker under {s.name}")

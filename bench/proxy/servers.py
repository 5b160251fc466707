"""Starting what the proxy benchmark measures: the upstreams (nginx with the files, a
WebSocket echo), the reference proxies (nginx, HAProxy, configurable-http-proxy), and one
router per source tree and worker count; and finding the processes that do their work.

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
from bench.proxy import chp_proxy, haproxy, nginx
from bench.proxy.layout import HOST, Layout
from bench.proxy.targets import RouterTarget
from tests.support.processes import Proc, Processes, wait_port

REPO = Path(__file__).resolve().parents[2]
ENTRY = REPO / "bench" / "proxy_bench.py"


@dataclass
class Servers:
    upstream: Proc
    ws: Proc
    proxies: dict[str, Proc] = field(default_factory=dict)  # target -> the process started


def start_nginx(procs: Processes, layout: Layout, tag: str, conf: str, core: int | None) -> Proc:
    path = layout.tmp / f"{tag}.conf"
    path.write_text(conf)
    binary = shutil.which("nginx") or "/usr/sbin/nginx"  # main checked that one exists
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


def start_reference(
    procs: Processes, layout: Layout, proxy: str, binary: str, core: int | None
) -> Proc:
    """nginx, HAProxy or CHP (`binary` from `targets.binary`) as a proxy, once it listens."""
    if proxy == "nginx":
        started = start_nginx(procs, layout, "proxy", nginx.proxy_conf(layout), core)
    elif proxy == "haproxy":
        conf = layout.tmp / "haproxy.cfg"
        conf.write_text(haproxy.proxy_conf(layout))
        argv = [*taskset(core), binary, "-db", "-f", str(conf)]
        started = procs.start(argv, "haproxy", cwd=REPO)
    elif proxy == "chp":
        auth = chp_proxy.token()
        argv = [*taskset(core), *chp_proxy.argv(binary, layout)]
        started = procs.start(argv, "chp", env={"CONFIGPROXY_AUTH_TOKEN": auth}, cwd=REPO)
        wait_port(layout.ports["chp-api"], proc=started)
        chp_proxy.add_ws_route(layout, auth)
    else:
        raise ValueError(proxy)
    wait_port(layout.ports[proxy], proc=started)
    return started


def router_argv(layout: Layout, target: RouterTarget, log_level: str) -> list[str]:
    return [
        "-m", "router",
        "--listen", f"{HOST}:{layout.ports[target.name]}",
        "--ring", str(layout.ring),
        "--secret-file", str(layout.secret),
        "--log-level", log_level,
        "--workers", str(target.workers),
    ]  # fmt: skip


def start_router(
    procs: Processes,
    layout: Layout,
    target: RouterTarget,
    log_level: str,
    core: int | None,
    prefix: tuple[str, ...] = (),
) -> Proc:
    """`python [prefix] -m router ...` from the target's tree, once it listens."""
    argv = [*taskset(core), sys.executable, *prefix, *router_argv(layout, target, log_level)]
    router = procs.start(argv, target.name.replace(":", "-"), cwd=target.tree)
    wait_port(layout.ports[target.name], proc=router)
    return router


def serving_pids(s: Proc, children: int = 0) -> tuple[int, ...]:
    """The processes that do a server's work: `s` itself, or its first `children` children
    (nginx's worker under its master, a router's workers under their parent)."""
    if not children:
        return (s.pid,)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kids = children_of(s.pid)
        if len(kids) >= children:
            return tuple(sorted(kids)[:children])
        time.sleep(0.05)
    raise RuntimeError(f"fewer than {children} children under {s.name}")

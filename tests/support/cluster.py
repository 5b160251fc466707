"""A local cluster for end-to-end tests: routers and nodes as real processes on 127.0.0.1.

Each node has its own port and data dir; the ring file lists them; routers read
it live. `Cluster` owns every process it starts (via `Processes`) and stops them
all when its context ends, also when a test fails.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.ring import Node, Ring, render_ring
from tests.support.processes import Proc, Processes, free_port, processes, wait_http
from tests.support.ring import SECRET

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "app"


def app_files() -> dict[str, str]:
    return {str(p.relative_to(FIXTURE)): p.read_text() for p in FIXTURE.rglob("*") if p.is_file()}


@dataclass
class HTTPResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


def http(
    method: str,
    url: str,
    body: object | None = None,
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
) -> HTTPResult:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return HTTPResult(
                resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
            )
    except urllib.error.HTTPError as exc:
        return HTTPResult(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


@dataclass
class NodeProc:
    name: str
    port: int
    data: Path
    proc: Proc
    extra: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class RouterProc:
    port: int
    proc: Proc
    extra: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    ps: Processes
    tmp: Path
    public_port: int
    secret: Path = field(init=False)
    ring_path: Path = field(init=False)
    nodes: dict[str, NodeProc] = field(default_factory=dict)
    routers: list[RouterProc] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.secret = self.tmp / "secret"
        self.secret.write_text(SECRET + "\n")
        self.ring_path = self.tmp / "ring.toml"
        self.ring_path.write_text("")

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    # -- nodes ------------------------------------------------------------------------------

    def start_node(
        self, name: str, *extra: str, in_ring: bool = True, port: int | None = None
    ) -> NodeProc:
        known = self.nodes.get(name)
        port = port or (known.port if known else free_port())
        data = self.tmp / name
        proc, port = self.ps.node(
            name,
            data,
            self.secret,
            "--log-level",
            "warning",
            *extra,
            public_url=self.public_url,
            port=port,
        )
        node = NodeProc(name, port, data, proc, extra)
        self.nodes[name] = node
        if in_ring and name not in self.states:
            self.states[name] = "active"
            self.write_ring()
        return node

    def restart_node(self, name: str) -> NodeProc:
        node = self.nodes[name]
        node.proc.stop()
        return self.start_node(name, *node.extra)

    def write_ring(self) -> None:
        ring = Ring(Node(n, self.nodes[n].url, s, 1) for n, s in self.states.items())  # type: ignore[arg-type]
        tmp = self.ring_path.with_suffix(".tmp")
        tmp.write_text(render_ring(ring))
        tmp.replace(self.ring_path)

    def set_state(self, name: str, state: str) -> None:
        self.states[name] = state
        self.write_ring()

    # -- routers ----------------------------------------------------------------------------

    def start_router(self, *extra: str, port: int | None = None) -> RouterProc:
        proc, port = self.ps.router(
            self.ring_path,
            self.secret,
            "--log-level",
            "warning",
            "--upstream-timeout",
            "40",
            *extra,
            port=port,
        )
        router = RouterProc(port, proc, extra)
        self.routers.append(router)
        return router

    def restart_router(self, router: RouterProc) -> RouterProc:
        router.proc.stop()
        self.routers.remove(router)
        return self.start_router(*router.extra, port=router.port)

    # -- API --------------------------------------------------------------------------------

    def create(
        self, via: str | None = None, files: dict[str, str] | None = None, **fields: Any
    ) -> dict[str, Any]:
        base = via or self.routers[0].url
        res = http("POST", f"{base}/kontext/preview", {"files": files or app_files(), **fields})
        assert res.status == 201, (res.status, res.body[:500])
        return res.json()

    def put_files(self, sid: str, files: dict[str, str], via: str | None = None) -> HTTPResult:
        base = via or self.routers[0].url
        return http("PUT", f"{base}/kontext/preview/{sid}/files", {"files": files})

    def wait_ready(self, url: str) -> None:
        wait_http(url, timeout=30)


@contextmanager
def cluster(
    tmp: Path,
    nodes: int = 2,
    routers: int = 1,
    node_args: tuple[str, ...] = (),
    router_args: tuple[str, ...] = (),
) -> Iterator[Cluster]:
    """A cluster whose first router listens on the public port nodes advertise."""
    with processes(tmp) as ps:
        c = Cluster(ps, tmp, free_port())
        for i in range(nodes):
            c.start_node(f"node-{i}", *node_args)
        c.start_router(*router_args, port=c.public_port)
        for _ in range(routers - 1):
            c.start_router(*router_args)
        deadline = time.monotonic() + 5
        while http("GET", f"{c.routers[0].url}/readyz").status != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield c


@contextmanager
def single_node(tmp: Path, *flags: str) -> Iterator[NodeProc]:
    """One `node-0` of its own on 127.0.0.1 (a secret file, a data dir under `tmp`),
    stopped when the block ends however it ends."""
    secret = tmp / "secret"
    secret.write_text(SECRET + "\n")
    with processes(tmp) as ps:
        proc, port = ps.node("node-0", tmp / "data", secret, *flags)
        yield NodeProc("node-0", port, tmp / "data", proc, flags)


def metric(base: str, name: str) -> float:
    """One unlabelled sample of a node's /metrics (0 when it has none yet)."""
    text = http("GET", f"{base}/metrics").body.decode()
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0

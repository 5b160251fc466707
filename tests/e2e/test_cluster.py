"""The cluster as a whole: routers and nodes as real processes, real Vite (CONTRACT §2, §4, §5).

What only a cluster shows: no shared store between router replicas (the ID names its
node), the create → GET race across replicas, adding a node without stranding sessions
or WebSockets, draining a node, and a node dying under load.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from router.ring import Node, Ring
from tests.support import vite_client
from tests.support.cluster import Cluster, app_files, cluster, http
from tests.support.processes import launcher_pids

pytestmark = pytest.mark.e2e

# Cheap to start: no React, no dependency pre-bundling.
SMALL = {
    "index.html": '<!doctype html><div id="app"></div><script type="module" src="./main.js"></script>\n',
    "main.js": 'document.getElementById("app").textContent = "hi";\n',
}


def wait_until(predicate: Callable[[], object], seconds: float, step: float = 0.1) -> float:
    """Poll `predicate()` until true; return how long it took (fails after `seconds`)."""
    t = time.monotonic()
    while not predicate():
        assert time.monotonic() - t < seconds, f"not true within {seconds} s"
        time.sleep(step)
    return time.monotonic() - t


def held_then_status(port: int, target: str, hold: float) -> tuple[bool, int]:
    """GET `target`: was the answer still outstanding after `hold` seconds, and its status."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        sock.settimeout(hold)
        data, held = b"", False
        try:
            data = sock.recv(256)
        except TimeoutError:
            held = True
        sock.settimeout(30)
        while b"\r\n" not in data:
            chunk = sock.recv(256)
            if not chunk:
                break
            data += chunk
        status = int(data.split()[1]) if data else 0
        while sock.recv(65536):  # the whole answer, so the node is done with the request
            pass
        return held, status


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def status_of(c: Cluster, via: str, sid: str) -> str:
    res = http("GET", f"{via}/kontext/preview/{sid}", timeout=10)
    assert res.status == 200, (res.status, res.body[:300])
    return str(res.json()["status"])


# -- create -> GET race ----------------------------------------------------------------------


def test_get_through_another_replica_right_after_create_never_404s(tmp_path: Path) -> None:
    iterations, hold = 200, 0.15
    with cluster(tmp_path, nodes=2, routers=2, node_args=("--max-running", "3")) as c:
        a, b = c.routers[0].url, c.routers[1].url

        def iteration(i: int) -> str:
            create_via, get_via = (a, b) if i % 2 == 0 else (b, a)
            sid = c.create(via=create_via, files=SMALL)["sessionId"]
            # A 404 would come back at once; a registered session is held while Vite starts.
            held, status = held_then_status(port_of(get_via), f"/preview/{sid}/", hold)
            assert status == 200, (i, sid, held, status)
            # Only once nothing waits for the session (see test_delete_while_a_request_is_held_...).
            res = http("DELETE", f"{create_via}/kontext/preview/{sid}", timeout=20)
            assert res.status == 200, (sid, res.status, res.body[:300])
            return f"{'held' if held else 'answered'} {hold * 1000:.0f} ms, then {status}"

        t = time.monotonic()
        with ThreadPoolExecutor(3) as pool:
            outcomes = Counter(pool.map(iteration, range(iterations)))
        print(f"\ncreate->GET race: {iterations} in {time.monotonic() - t:.1f} s: {dict(outcomes)}")
        assert sum(outcomes.values()) == iterations
        # Deleted sessions leave no dev server behind.
        wait_until(lambda: not launcher_pids(str(tmp_path), warm=False), 10)


def test_delete_while_a_request_is_held_keeps_the_node_up_and_leaves_no_vite(
    tmp_path: Path,
) -> None:
    with cluster(tmp_path, nodes=1, routers=1) as c:
        router, node = c.routers[0].url, c.nodes["node-0"]
        for _ in range(3):
            sid = c.create(via=router, files=SMALL)["sessionId"]
            answer: list[int] = []

            def held_get(sid: str = sid, answer: list[int] = answer) -> None:
                answer.append(http("GET", f"{router}/preview/{sid}/", timeout=30).status)

            getter = threading.Thread(target=held_get)
            getter.start()
            time.sleep(0.1)  # held: Vite takes ~0.7 s to start
            assert http("DELETE", f"{router}/kontext/preview/{sid}", timeout=20).status == 200
            getter.join(35)
            time.sleep(1.0)
            assert node.proc.popen.poll() is None, "the node died"
            assert answer and answer[0] != 200, "a deleted session was served"
            assert not launcher_pids(sid), "a Vite runs for a deleted session"
            assert http("GET", f"{router}/kontext/preview/{sid}").status == 410


# -- no shared store -------------------------------------------------------------------------


def test_sessions_survive_a_restart_of_every_router(tmp_path: Path) -> None:
    with cluster(tmp_path, nodes=2, routers=2, node_args=("--max-running", "6")) as c:
        a = c.routers[0]
        sessions = [c.create(via=a.url, files=SMALL) for _ in range(10)]
        assert {s["node"] for s in sessions} == {"node-0", "node-1"}
        for router in list(c.routers):
            c.restart_router(router)
        b = next(r for r in c.routers if r.port != a.port)
        for s in sessions:
            sid = s["sessionId"]
            res = http("GET", f"{b.url}/preview/{sid}/", timeout=30)
            assert res.status == 200, (sid, res.status, res.body[:300])
            assert status_of(c, b.url, sid) == "ready"


# -- adding a node ---------------------------------------------------------------------------


@dataclass
class Live:
    sid: str
    node: str
    sock: vite_client.HmrSocket
    base: str = field(init=False)

    def __post_init__(self) -> None:
        self.base = f"/preview/{self.sid}/"


async def pong(sock: vite_client.HmrSocket) -> None:
    payload = os.urandom(8).hex().encode()
    await sock.send_frame(0x9, payload)  # ping
    with trio.fail_after(5):
        while True:
            opcode, data = await sock.read_frame()
            assert opcode != 0x8, "the WebSocket was closed"
            if opcode == 0xA and data == payload:
                return


def hashed_ids(count: int, moving: int) -> list[str]:
    """`count` client-chosen IDs, `moving` of them owned by node-2 once it joins the ring."""
    after = Ring(Node(f"node-{i}", f"http://127.0.0.1:{9000 + i}") for i in range(3))
    moved = [f"proj-{i}" for i in range(200) if after.route(f"proj-{i}")[0].name == "node-2"]
    stayed = [f"proj-{i}" for i in range(200) if after.route(f"proj-{i}")[0].name != "node-2"]
    return moved[:moving] + stayed[: count - moving]


async def test_adding_a_node_places_new_sessions_there_and_strands_nothing(
    tmp_path: Path,
) -> None:
    args = ("--max-running", "24")
    with cluster(tmp_path, nodes=2, routers=2, node_args=args) as c:
        routers = [r.url for r in c.routers]
        public_host = f"127.0.0.1:{c.public_port}"
        hashed = hashed_ids(10, moving=4)
        for i, sid in enumerate(hashed):
            obj = c.create(via=routers[i % 2], files=SMALL, sessionId=sid)
            assert obj["sessionId"] == sid and obj["node"] in ("node-0", "node-1")
        created = [c.create(via=routers[i % 2], files=app_files()) for i in range(20)]
        assert {s["node"] for s in created} == {"node-0", "node-1"}

        live: list[Live] = []
        t = time.monotonic()
        for i, s in enumerate(created):
            sid, port = s["sessionId"], port_of(routers[i % 2])
            res = http("GET", f"{routers[i % 2]}/preview/{sid}/", timeout=60)
            assert res.status == 200, (sid, res.status, res.body[:300])
            token = await vite_client.ws_token(port, f"/preview/{sid}/", public_host)
            status, sock = await vite_client.hmr_handshake(
                port, f"/preview/{sid}/hmr?token={token}", public_host
            )
            assert status == 101, (sid, status)
            assert (await sock.receive_json())["type"] == "connected"
            live.append(Live(sid, s["node"], sock))
        print(f"\n20 sessions serving with an open HMR socket in {time.monotonic() - t:.1f} s")
        # The ones that get an update: Vite pushes only modules a client has loaded.
        updated = [
            *[x for x in live if x.node == "node-0"][:2],
            *[x for x in live if x.node == "node-1"][:2],
        ]
        for x in updated:
            for path in ("src/main.jsx", "src/App.jsx"):
                got = await vite_client.http_get(c.public_port, x.base + path, public_host)
                assert got.status == 200, (x.sid, path, got.status)

        c.start_node("node-2", *args)  # returns once the ring names it
        added = time.monotonic()
        # Each router rereads the ring every 0.5 s; 5 s is only a bound for a loaded machine.
        for via in routers:
            while json.loads(http("GET", f"{via}/readyz").body)["nodes"] != 3:
                assert time.monotonic() - added < 5, f"{via} never read the new ring"
                await trio.sleep(0.05)
        seen = time.monotonic() - added
        # Then placement moves at once: node-2 is the only node under the bound (the others
        # hold 15 sessions each, the mean is 10), so each router's next create lands there.
        creates: dict[str, int] = {}
        for via in routers:
            for tries in range(1, 4):
                obj = c.create(via=via, files=SMALL)
                assert http("DELETE", f"{via}/kontext/preview/{obj['sessionId']}").status == 200
                if obj["node"] == "node-2":
                    creates[via] = tries
                    break
        print(f"both routers read the new ring in {seen:.2f} s; creates until node-2: {creates}")
        assert creates == {via: 1 for via in routers}

        # Every existing session still answers, through every router.
        failures: list[tuple[str, str, int]] = []
        for via in routers:
            for x in live:
                for target in (f"/kontext/preview/{x.sid}", x.base):
                    res = http("GET", via + target, timeout=30)
                    if res.status != 200:
                        failures.append((via, target, res.status))
            for sid in hashed:
                for target in (f"/kontext/preview/{sid}", f"/preview/{sid}/"):
                    res = http("GET", via + target, timeout=30)
                    if res.status != 200:
                        failures.append((via, target, res.status))
        assert not failures
        new_ring = Ring(Node(n, c.nodes[n].url) for n in c.states)
        assert sum(new_ring.route(sid)[0].name == "node-2" for sid in hashed) == 4

        # Every HMR socket is still open, and file changes still reach the browser.
        for x in live:
            await pong(x.sock)
        app = app_files()["src/App.jsx"].replace("count is", "clicks:")
        for x in updated:
            t = time.monotonic()
            assert c.put_files(x.sid, {"src/App.jsx": app}).status == 200
            with trio.fail_after(10):
                while True:
                    msg = await x.sock.receive_json()
                    if msg["type"] == "update":
                        break
            paths = [u["path"] for u in msg["updates"]]  # type: ignore[attr-defined]
            assert any(p.endswith("/src/App.jsx") for p in paths), msg
            print(f"{x.node}: PUT -> HMR update {(time.monotonic() - t) * 1000:.0f} ms")
        for x in live:
            await x.sock.stream.aclose()


# -- draining a node -------------------------------------------------------------------------


def test_a_draining_node_keeps_serving_takes_nothing_new_and_exits_cleanly(
    tmp_path: Path,
) -> None:
    args = ("--max-running", "4", "--idle-seconds", "2")
    with cluster(tmp_path, nodes=2, routers=1, node_args=args) as c:
        router = c.routers[0].url
        node1 = c.nodes["node-1"]
        # Node-local creation puts them where the test needs them.
        idle = c.create(via=node1.url, files=SMALL)["sessionId"]
        on_node_1 = [c.create(via=node1.url, files=SMALL)["sessionId"] for _ in range(3)]
        c.set_state("node-1", "draining")
        time.sleep(1.0)  # routers poll the ring file every 0.5 s

        for sid in on_node_1:
            res = http("GET", f"{router}/preview/{sid}/", timeout=30)
            assert res.status == 200, (sid, res.status, res.body[:300])
        placed = []
        for _ in range(10):
            obj = c.create(via=router, files=SMALL)
            placed.append(obj["node"])
            assert http("DELETE", f"{router}/kontext/preview/{obj['sessionId']}").status == 200
        assert placed == ["node-0"] * 10

        wait_until(lambda: status_of(c, router, idle) == "idle", 10, step=0.2)
        answer: list[tuple[int, float]] = []

        def held_get() -> None:
            t = time.monotonic()
            res = http("GET", f"{router}/preview/{idle}/", timeout=40)
            answer.append((res.status, time.monotonic() - t))

        getter = threading.Thread(target=held_get)
        getter.start()
        wait_until(lambda: status_of(c, router, idle) != "idle", 5, step=0.02)
        assert getter.is_alive() and not answer, "the GET was not held while Vite starts"
        node1.proc.signal(signal.SIGTERM)
        getter.join(40)
        assert answer and answer[0][0] == 200, answer
        print(f"\nGET held across SIGTERM: {answer[0][0]} after {answer[0][1]:.2f} s")
        assert node1.proc.popen.wait(30) == 0
        wait_until(lambda: not launcher_pids(str(node1.data)), 10)


# -- a node dies -----------------------------------------------------------------------------


@dataclass
class Sample:
    sid: str
    started: float
    seconds: float
    status: int


class RequestLoop:
    """GET each session's page in turn until stopped, recording every answer."""

    def __init__(self, base: str, sids: list[str]) -> None:
        self.base, self.sids = base, sids
        self.samples: list[Sample] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            sid = self.sids[i % len(self.sids)]
            i += 1
            t = time.monotonic()
            try:
                status = http("GET", f"{self.base}/preview/{sid}/", timeout=10).status
            except OSError:  # reset, refused or timed out at the client: no answer at all
                status = -1
            self.samples.append(Sample(sid, t, time.monotonic() - t, status))

    @contextlib.contextmanager
    def running(self) -> Iterator[RequestLoop]:
        self.thread.start()
        try:
            yield self
        finally:
            self.stopping.set()
            self.thread.join(15)


def test_a_killed_node_costs_only_its_own_sessions(tmp_path: Path) -> None:
    with cluster(tmp_path, nodes=2, routers=1, node_args=("--max-running", "8")) as c:
        router = c.routers[0].url
        node1 = c.nodes["node-1"]
        own = {
            n: [c.create(via=c.nodes[n].url, files=SMALL)["sessionId"] for _ in range(3)]
            for n in ("node-0", "node-1")
        }
        for sids in own.values():
            for sid in sids:
                assert http("GET", f"{router}/preview/{sid}/", timeout=30).status == 200
        vite_of_node_1 = {sid: launcher_pids(sid) for sid in own["node-1"]}
        assert all(vite_of_node_1.values())
        assert launcher_pids(str(node1.data), warm=False)  # found by their workspace too

        survivor, victim = RequestLoop(router, own["node-0"]), RequestLoop(router, own["node-1"])
        with survivor.running(), victim.running():
            time.sleep(0.5)
            killed = time.monotonic()
            os.kill(node1.proc.popen.pid, signal.SIGKILL)
            # Orphaned dev servers exit by themselves (stdin EOF), without the node.
            vite_gone = wait_until(
                lambda: not any(launcher_pids(sid) for sid in own["node-1"]), 10, 0.05
            )
            time.sleep(max(0.0, 1.5 - (time.monotonic() - killed)))
            placed = []
            for _ in range(6):
                obj = c.create(via=router, files=SMALL)
                placed.append(obj["node"])
                assert http("DELETE", f"{router}/kontext/preview/{obj['sessionId']}").status == 200
        assert placed == ["node-0"] * 6

        assert survivor.samples and all(s.status == 200 for s in survivor.samples), Counter(
            s.status for s in survivor.samples
        )
        before = [s for s in victim.samples if s.started + s.seconds < killed]
        across = [s for s in victim.samples if s.started < killed <= s.started + s.seconds]
        after = [s for s in victim.samples if s.started >= killed]
        assert before and all(s.status == 200 for s in before)
        assert all(s.status in (200, 502) for s in across), across
        assert len(after) >= 10 and all(s.status == 502 for s in after), Counter(
            s.status for s in after
        )
        worst = max(s.seconds for s in after)
        assert worst < 1.0
        print(
            f"\nafter kill -9: node-0 {len(survivor.samples)} requests all 200; "
            f"node-1 {len(after)} requests all 502, slowest {worst * 1000:.1f} ms"
        )

        print(f"node-1's Vite processes gone {vite_gone:.2f} s after the kill")

"""Faults injected into a real cluster (issue: holding up under faults). Each is a test
that can fail: the fault costs only what it must, and the platform recovers."""

from __future__ import annotations

import http.client as http_client
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from previewnode.config import RUNTIME_DIR
from tests.support.cluster import app_files, cluster, http, metric
from tests.support.processes import launcher_pids, poll_until, processes, wait_http
from tests.support.ring import SECRET
from tests.support.traffic import NO_ANSWER, Traffic

pytestmark = pytest.mark.e2e


def session_when(api: str, status: str, seconds: float) -> dict[str, object]:
    """The session object once it has `status` (an AssertionError after `seconds`)."""
    return poll_until(lambda: (o := http("GET", api).json())["status"] == status and o, seconds)


def test_a_hung_node_costs_its_own_sessions_a_504_and_recovers_on_sigcont(
    tmp_path: Path,
) -> None:
    """SIGSTOP a node: its sessions answer 504 `node_timeout` at the router's upstream
    timeout, the other node's sessions are served as before, and SIGCONT brings it back."""
    with cluster(tmp_path, nodes=2, router_args=("--upstream-timeout", "2")) as c:
        router = c.routers[0].url
        own: dict[str, str] = {}
        for name, node in c.nodes.items():  # node-local creation: an ID of that node
            made = http("POST", f"{node.url}/kontext/preview?wait=ready", {"files": app_files()})
            assert made.status == 201, made.body
            own[name] = made.json()["sessionId"]
        for sid in own.values():
            assert http("GET", f"{router}/preview/{sid}/").status == 200
        hung = c.nodes["node-0"].proc
        hung.signal(signal.SIGSTOP)
        try:
            t = time.monotonic()
            res = http("GET", f"{router}/preview/{own['node-0']}/", timeout=30)
            waited = time.monotonic() - t
            assert res.status == 504 and res.json()["code"] == "node_timeout", res.body
            assert 1.5 < waited < 10, waited  # at the upstream timeout, not later
            t = time.monotonic()
            assert http("GET", f"{router}/preview/{own['node-1']}/", timeout=30).status == 200
            assert time.monotonic() - t < 2, "the healthy node's session waited on the hung one"
        finally:
            hung.signal(signal.SIGCONT)
        deadline = time.monotonic() + 15
        while http("GET", f"{router}/preview/{own['node-0']}/", timeout=30).status != 200:
            assert time.monotonic() < deadline, "the node did not recover after SIGCONT"
            time.sleep(0.2)


CRASHING_CONFIG = 'throw new Error("boom at start: " + 6 * 7);\n'
FIXED_CONFIG = 'import react from "@vitejs/plugin-react";\nexport default { plugins: [react()] };\n'


def test_a_dev_server_crashing_at_start_backs_off_then_fails_with_its_stderr_until_an_upload(
    tmp_path: Path,
) -> None:
    """An app config that throws: three starts with a growing pause between them, then
    `failed` with the end of Vite's stderr (no node path in it), kept across a node
    restart, nothing started meanwhile; a PUT of files (the fix) starts it again."""
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    data = tmp_path / "data"
    flags = ("--sandbox", "required")  # where the app's own vite.config.js runs
    with processes(tmp_path) as ps:
        proc, port = ps.node("node-0", data, secret, *flags)
        base = f"http://127.0.0.1:{port}"
        files = {**app_files(), "vite.config.js": CRASHING_CONFIG}
        t = time.monotonic()
        made = http("POST", f"{base}/kontext/preview?wait=ready", {"files": files})
        assert made.status == 201, made.body
        sid = made.json()["sessionId"]
        api = f"{base}/kontext/preview/{sid}"
        failed = session_when(api, "failed", 45)
        took = time.monotonic() - t
        error = str(failed["error"])
        assert "crashed 3 times" in error and "boom at start: 42" in error, error
        assert "vite.config.js:1" in error, error  # the upload's name for the file
        assert "node_modules/vite/dist" in error  # Vite's own frames, by a short name
        for private in (tmp_path, RUNTIME_DIR, RUNTIME_DIR.resolve(), "file:///"):
            assert str(private) not in error, (private, error)
        assert metric(base, "preview_node_vite_starts_total") == 3
        assert metric(base, "preview_node_vite_gave_up_total") == 1
        assert took >= 1.5, took  # 0.5 s, then 1 s of backoff between the three starts
        # failed means failed: a preview request is refused and starts nothing
        res = http("GET", f"{base}/preview/{sid}/")
        assert res.status == 502 and res.json()["code"] == "session_failed", res.body
        time.sleep(1.0)
        assert metric(base, "preview_node_vite_starts_total") == 3 and not launcher_pids(sid)
        # the verdict is on disk, like every other part of the session
        ps.stop(proc)
        proc, port = ps.node("node-0", data, secret, *flags, port=port)
        again = http("GET", api).json()
        assert again["status"] == "failed" and again["error"] == error, again
        assert http("GET", f"{base}/preview/{sid}/").status == 502
        assert metric(base, "preview_node_vite_starts_total") == 0
        # an upload (here: the fix) forgets the crashes and starts it again
        put = http("PUT", f"{api}/files", {"files": {"vite.config.js": FIXED_CONFIG}})
        assert put.status == 200, put.body
        assert put.json()["status"] == "starting" and "error" not in put.json(), put.body
        session_when(api, "ready", 30)
        assert http("GET", f"{base}/preview/{sid}/").status == 200


def test_an_unreachable_registry_fails_the_install_with_npms_message_and_a_put_retries(
    tmp_path: Path,
) -> None:
    """npm pointed (`--npmrc`) at a loopback port that refuses: `failed` with npm's
    ECONNREFUSED (its log path, in the node's cache dir, cut), preview requests 502; a PUT
    of other files leaves it failed, a PUT of package.json installs again."""
    assert not (RUNTIME_DIR / "node_modules" / "left-pad").exists()  # a real install
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    with socket.socket() as refusing, processes(tmp_path) as ps:
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
        registry = f"127.0.0.1:{refusing.getsockname()[1]}"
        npmrc = tmp_path / "npmrc"
        npmrc.write_text(
            f"registry=http://{registry}/\nfetch-retries=0\nfetch-timeout=5000\n"
            "fetch-retry-mintimeout=100\nfetch-retry-maxtimeout=200\n"
        )
        _, port = ps.node("node-0", tmp_path / "data", secret, "--npmrc", str(npmrc))
        base = f"http://127.0.0.1:{port}"
        pkg = {"name": "app", "dependencies": {"left-pad": "1.3.0"}}
        made = http("POST", f"{base}/kontext/preview", {"files": app_files(), "packageJson": pkg})
        assert made.status == 201 and made.json()["status"] == "installing", made.body
        api = f"{base}/kontext/preview/{made.json()['sessionId']}"
        error = str(session_when(api, "failed", 60)["error"])
        assert error.startswith("dependency install failed: "), error
        assert "ECONNREFUSED" in error and registry in error, error
        assert str(tmp_path) not in error, error
        res = http("GET", f"{base}/preview/{made.json()['sessionId']}/")
        assert res.status == 502 and res.json()["code"] == "session_failed", res.body
        installs = 'preview_node_installs_total{result="failed"}'
        assert metric(base, installs) == 1
        # a source edit does not reinstall the same dependencies
        edit = http("PUT", f"{api}/files", {"files": {"src/extra.js": "export const x = 1;\n"}})
        assert edit.status == 200 and edit.json()["status"] == "failed", edit.body
        # the next package.json does
        put = http("PUT", f"{api}/files", {"files": {}, "packageJson": pkg})
        assert put.status == 200 and put.json()["status"] == "installing", put.body
        assert "error" not in put.json()
        assert "ECONNREFUSED" in str(session_when(api, "failed", 60)["error"])
        assert metric(base, installs) == 2


def big_upload(count: int) -> dict[str, str]:
    """The fixture app and `count` more files, each with content of its own (a truncated
    or missing one shows), so that writing them (each fsynced) takes a while."""
    files = app_files()
    files.update({f"src/gen/f{i}.txt": f"{i}:" + "x" * 1000 for i in range(count)})
    return files


def test_a_node_killed_during_a_create_restarts_with_whole_sessions_or_none(
    tmp_path: Path,
) -> None:
    """SIGKILL a node at each step of a create (its directory just made, half written,
    renamed into place, answered) and restart it on the same data dir: every session it
    lists serves its whole upload, a 201 is never lost, and no staging is left behind."""
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    data = tmp_path / "data"
    sessions_dir = data / "sessions"
    files = big_upload(1500)
    with processes(tmp_path) as ps:
        proc, port = ps.node("node-0", data, secret, "--max-running", "1")
        base = f"http://127.0.0.1:{port}"
        answered: set[str] = set()

        def registered() -> set[str]:
            return {p.name for p in sessions_dir.iterdir() if not p.name.startswith(".")}

        def begun(known: set[str]) -> list[Path]:
            """The create's own directory: its staging (or, were it registered early, its
            session: the check below must see that too)."""
            return [p for p in sessions_dir.iterdir() if p.name not in known]

        def written_half(known: set[str]) -> bool:
            return any(
                len(os.listdir(gen)) >= 750
                for p in begun(known)
                if (gen := p / "ws" / "src" / "gen").is_dir()
            )

        phases: dict[str, Callable[[set[str], dict[str, object]], object]] = {
            "begun": lambda known, _done: begun(known),
            "half written": lambda known, _done: written_half(known),
            "renamed": lambda known, _done: registered() - known,
            "answered": lambda _known, done: "status" in done,
        }
        for phase, reached in phases.items():
            known = registered()
            done: dict[str, object] = {}

            def post(done: dict[str, object] = done) -> None:
                try:
                    res = http("POST", f"{base}/kontext/preview", {"files": files}, timeout=60)
                    done["status"], done["body"] = res.status, res.body
                except (OSError, http_client.HTTPException) as exc:
                    done["error"] = exc

            sender = threading.Thread(target=post)
            sender.start()
            try:
                poll_until(lambda: reached(known, done), 30, step=0.002)  # noqa: B023
                proc.signal(signal.SIGKILL)
            finally:
                sender.join(70)
            ps.stop(proc)
            print(phase, {k: v for k, v in done.items() if k != "body"}, len(registered()))
            if done.get("status") == 201:
                answered.add(json.loads(done["body"])["sessionId"])  # type: ignore[arg-type]
            proc, port = ps.node("node-0", data, secret, "--max-running", "1", port=port)
            assert not [p.name for p in sessions_dir.iterdir() if p.name.startswith(".")], phase
            listed = {
                s["sessionId"] for s in http("GET", f"{base}/kontext/preview").json()["sessions"]
            }
            assert answered <= listed, (phase, answered - listed)
            assert listed == registered() == {p.name for p in sessions_dir.iterdir()}, phase
            for sid in listed:
                assert http("GET", f"{base}/kontext/preview/{sid}").status == 200, (phase, sid)
                back = http("GET", f"{base}/kontext/preview/{sid}/files").json()["files"]
                got = {f["path"]: f["content"] for f in back}
                assert got == files, (phase, sid, len(got), sorted(set(files) - set(got))[:5])
        assert answered, "no create was answered"
        ps.stop(proc)
        # the dev servers of the killed nodes went with them (their stdin reached EOF)
        poll_until(lambda: not launcher_pids(str(data)), 15)


PAGE = {"index.html": "<!doctype html><title>fault</title><p>served</p>\n"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_router_restarted_under_traffic_loses_only_requests_in_flight_through_it(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Two routers, a request loop through each; router A is stopped (SIGTERM: a rolling
    restart; SIGKILL: a crash) and started again on its port. Every request through B is
    served; what fails through A is a lost connection (never an HTTP error) while A was
    down, and A serves again once it is back."""
    with cluster(tmp_path, nodes=2, routers=2) as c:
        a, b = c.routers
        sids = [c.create(via=a.url, files=PAGE)["sessionId"] for _ in range(4)]
        for sid in sids:
            wait_http(f"{b.url}/preview/{sid}/", timeout=30)
        via_a = Traffic([f"{a.url}/preview/{sid}/" for sid in sids], seconds=45, pause=0.01)
        via_b = Traffic([f"{b.url}/preview/{sid}/" for sid in sids], seconds=45, pause=0.01)
        with via_a.running(), via_b.running():
            time.sleep(1.0)
            down = time.monotonic()
            c.ps.stop(a.proc, sig=sig)
            c.routers.remove(a)
            c.start_router(*a.extra, port=a.port)  # once its /healthz answers
            up = time.monotonic()
            time.sleep(1.5)
        assert via_b.samples and not via_b.failures(), via_b.summary()
        lost = via_a.failures()
        assert all(s.status == NO_ANSWER for s in lost), [s for s in lost if s.status != NO_ANSWER]
        assert all(s.overlaps(down, up) for s in lost), [
            s for s in lost if not s.overlaps(down, up)
        ]
        before = [s for s in via_a.samples if s.ended < down]
        after = [s for s in via_a.samples if s.started > up]
        assert before and all(s.status == 200 for s in before)
        assert len(after) >= 10 and all(s.status == 200 for s in after), Counter(
            s.status for s in after
        )
        print(
            f"\nrouter A {sig.name}: down for {up - down:.2f} s, {len(lost)} of "
            f"{len(via_a.samples)} requests through it lost; through B "
            f"{len(via_b.samples)} all 200"
        )


def test_twenty_node_deaths_cost_the_live_node_nothing(tmp_path: Path) -> None:
    """kill -9 node-1 twenty times, restarting it on its port and data dir each time, while
    requests go through the router to both nodes' sessions (one of node-1's wakes its
    dev server after each restart: CPU load on top of the restarts). Every request for a
    node-0 session is served; node-1's fail only as "node unreachable" while it is down,
    never as a 500 (a held page whose node died answered 500 until the router stopped
    wrapping the upstream's failure in an exception group: proxycore.forward)."""
    with cluster(tmp_path, nodes=2, routers=1, node_args=("--max-running", "4")) as c:
        router = c.routers[0].url
        own = {
            name: [c.create(via=node.url, files=PAGE)["sessionId"] for _ in range(3)]
            for name, node in c.nodes.items()
        }
        for sids in own.values():
            for sid in sids:
                wait_http(f"{router}/preview/{sid}/", timeout=30)
        live = Traffic([f"{router}/preview/{sid}/" for sid in own["node-0"]], seconds=100)
        # One page (held while its dev server starts, so in flight at the kill) and API
        # reads: waking all three after each restart would pile up dev servers still
        # booting after the kill, load that grows with the count of deaths.
        first, *others = own["node-1"]
        dying = Traffic(
            [f"{router}/preview/{first}/", *(f"{router}/kontext/preview/{s}" for s in others)],
            seconds=100,
            pause=0.01,
        )
        deaths = 0
        started = time.monotonic()
        with live.running(), dying.running():
            for _ in range(20):
                # ~1.5 s a restart on an idle 2-core machine, 3-4 s at a load of 13
                assert time.monotonic() < started + 120, f"only {deaths} deaths in 120 s"
                time.sleep(0.2)
                victim = c.nodes["node-1"]
                victim.proc.signal(signal.SIGKILL)
                c.ps.stop(victim.proc)
                deaths += 1
                c.start_node("node-1", *victim.extra)  # once its /healthz answers
            time.sleep(0.5)
        assert deaths == 20
        assert len(live.samples) > 100 and not live.failures(), (
            live.summary(),
            live.failures()[:5],
        )
        odd = [s for s in dying.failures() if s.status not in (502, 503, 504)]
        assert not odd, odd[:5]
        print(
            f"\n20 deaths of node-1 in {time.monotonic() - started:.1f} s: node-0 served "
            f"{len(live.samples)} of {len(live.samples)}; node-1 {dict(dying.summary())}"
        )
    # Every killed incarnation's dev servers, warm ones included, ended without it
    # (reproduced: warm launchers whose node was killed while they imported Vite hung in
    # exit's teardown, about half of them).
    poll_until(lambda: not launcher_pids(str(tmp_path)), 15)


SLOW_CONFIG = """
import react from "@vitejs/plugin-react";

export default async () => {
  await new Promise((resolve) => setTimeout(resolve, 30000)); // a config that takes its time
  return { plugins: [react()] };
};
"""


def test_a_node_killed_while_a_dev_server_boots_leaves_no_dev_server(tmp_path: Path) -> None:
    """The launcher exits on stdin's end from its config line on: a node SIGKILLed while
    the app's own config loads left a dev server running for good (it listened for the
    end only once its server was up, and by then stdin had long ended)."""
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    data = tmp_path / "data"
    with processes(tmp_path) as ps:
        proc, port = ps.node("node-0", data, secret, "--sandbox", "required")
        files = {**app_files(), "vite.config.js": SLOW_CONFIG}
        made = http("POST", f"http://127.0.0.1:{port}/kontext/preview", {"files": files})
        assert made.status == 201, made.body
        poll_until(lambda: launcher_pids(str(data), warm=False), 30)  # booting: its config
        time.sleep(1)
        os.kill(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(10)
        poll_until(lambda: not launcher_pids(str(data)), 10)

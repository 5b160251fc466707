"""The router as a real process: drain on SIGTERM, bounded memory, workers, ring CLI."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from previewcore.session_id import mint, parse_secrets
from tests.support.processes import processes
from tests.support.ring import SECRET, ring_text
from tests.support.upstreams import Reply, Seen, Upstream, client, get


def _files(tmp: Path, port: int) -> tuple[Path, Path]:
    ring, secret = tmp / "ring.toml", tmp / "secret"
    ring.write_text(ring_text({"node-0": (port, "active")}))
    secret.write_text(SECRET + "\n")
    return ring, secret


async def test_sigterm_finishes_in_flight_requests_then_exits_0(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    async def slow(seen: Seen) -> Reply:
        await trio.sleep(1.0)
        return Reply(200, [], [b"finished"])

    up = Upstream(slow)
    await nursery.start(up.serve)
    ring, secret = _files(tmp_path, up.port)
    sid = mint("node-0", parse_secrets(SECRET))
    with processes(tmp_path) as ps:
        proc, port = await trio.to_thread.run_sync(
            lambda: ps.router(ring, secret, "--drain-seconds", "2")
        )
        async with client(port) as idle, client(port) as busy:
            assert (await idle.request("GET", "/readyz")).status == 200
            result: list[int] = []

            async def in_flight() -> None:
                resp = await busy.request("GET", f"/preview/{sid}/")
                result.append(resp.status)
                assert resp.body == b"finished"

            async with trio.open_nursery() as n:
                n.start_soon(in_flight)
                await trio.sleep(0.3)
                proc.signal(15)
                await trio.sleep(0.2)
                assert (await idle.request("GET", "/readyz")).status == 503  # draining
            assert result == [200]
        code = await trio.to_thread.run_sync(lambda: proc.popen.wait(10))
        assert code == 0, proc.output()


async def test_one_gib_download_streams_with_flat_memory(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    chunk = b"z" * 65536
    total = 1 << 30
    up = Upstream(
        lambda s: Reply(
            200, [(b"content-length", str(total).encode())], [chunk] * (total // len(chunk))
        )
    )
    await nursery.start(up.serve)
    ring, secret = _files(tmp_path, up.port)
    sid = mint("node-0", parse_secrets(SECRET))
    with processes(tmp_path) as ps:
        proc, port = await trio.to_thread.run_sync(
            lambda: ps.router(ring, secret, "--log-level", "warning")
        )
        await get(port, "/healthz")
        base = proc.rss_kib()
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(f"GET /preview/{sid}/big HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = 0
        peak = base
        n = 0
        with trio.fail_after(120):
            while received < total:
                data = await stream.receive_some(1 << 20)
                assert data
                received += len(data)
                n += 1
                if n % 64 == 0:
                    peak = max(peak, proc.rss_kib())
                    await trio.sleep(0)  # let the upstream task (same process) keep writing
        await stream.aclose()
    assert received > total  # head + 1 GiB body
    growth_mib = (peak - base) / 1024
    print(
        f"router RSS base {base / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, growth {growth_mib:.1f} MiB"
    )
    assert growth_mib < 8


async def test_workers_share_the_socket_and_metrics_aggregate(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    up = Upstream()
    await nursery.start(up.serve)
    ring, secret = _files(tmp_path, up.port)
    from tests.support.processes import free_port

    admin = free_port()
    with processes(tmp_path) as ps:
        proc, port = await trio.to_thread.run_sync(
            lambda: ps.router(
                ring, secret, "--workers", "2", "--admin-listen", f"127.0.0.1:{admin}"
            )
        )
        children = subprocess.run(
            ["pgrep", "-P", str(proc.popen.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) == 2
        for _ in range(40):  # separate connections, so both workers take some
            assert (await get(port, "/healthz")).status == 200
        assert (await get(port, "/metrics")).status == 404  # metrics only on the admin listener
        sid = mint("node-0", parse_secrets(SECRET))
        assert (await get(admin, f"/preview/{sid}/")).status == 404  # and nothing else is there
        body = (await get(admin, "/metrics")).body.decode()
        counts = [
            float(m)
            for m in re.findall(
                r'preview_router_requests_total\{route="local",status="200"\} (\S+)', body
            )
        ]
        assert counts and sum(counts) >= 40, body[:2000]
        proc.signal(15)
        code = await trio.to_thread.run_sync(lambda: proc.popen.wait(10))
        assert code == 0


def _ringctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", "ring", *args], capture_output=True, text=True
    )


def test_ring_cli_edits_and_validates(tmp_path: Path) -> None:
    f = tmp_path / "ring.toml"
    assert _ringctl("add", str(f), "node-0", "http://127.0.0.1:9000").returncode == 0
    assert _ringctl("add", str(f), "node-1", "http://127.0.0.1:9001").returncode == 0
    assert _ringctl("drain", str(f), "node-1").returncode == 0
    out = _ringctl("show", str(f)).stdout
    assert "node-0\tactive" in out and "node-1\tdraining" in out
    before = f.read_text()
    bad = _ringctl("add", str(f), "Bad_Name", "http://x:1")
    assert bad.returncode == 2 and "name" in bad.stderr
    assert _ringctl("add", str(f), "node-0", "http://x:1").returncode == 2  # duplicate
    assert _ringctl("add", str(f), "node-2", "ftp://x:1").returncode == 2
    assert f.read_text() == before  # failed edits change nothing
    assert _ringctl("remove", str(f), "node-1").returncode == 0
    assert "node-1" not in _ringctl("show", str(f)).stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ring")]  # no temp files left


@pytest.mark.parametrize("content", ["", "short\n"])
def test_router_refuses_to_start_without_a_good_secret(tmp_path: Path, content: str) -> None:
    ring, secret = _files(tmp_path, 1)
    secret.write_text(content)
    start = time.monotonic()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "router",
            "--ring",
            str(ring),
            "--secret-file",
            str(secret),
            "--listen",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert res.returncode == 2 and "secret" in res.stderr
    assert time.monotonic() - start < 20

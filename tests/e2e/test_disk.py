"""A node's disk filling up (CONTRACT §2: 507 `insufficient_storage`), on a real small
file system: a 64 MiB tmpfs as the data dir. Below the watermark, creates and uploads are
refused before anything is written; with no watermark, a disk that fills mid-write gives
the same 507 and leaves nothing half stored; and it all recovers when space returns.
Needs root for the mount (CI is root); skipped where mounting is not allowed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import app_files, http
from tests.support.processes import processes
from tests.support.ring import SECRET

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
BLOB = "x" * (7 * MiB)  # under --max-file-bytes (8 MiB)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def stored(base: str, sid: str) -> set[str]:
    files = http("GET", f"{base}/kontext/preview/{sid}/files").json()["files"]
    return {f["path"] for f in files}


def put(base: str, sid: str, files: dict[str, str], delete: list[str] | None = None) -> int:
    body = {"files": files, "delete": delete or []}
    return http("PUT", f"{base}/kontext/preview/{sid}/files", body).status


def test_below_the_watermark_creates_and_uploads_get_507_and_nothing_is_stored(
    small_disk: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    with processes(tmp_path) as ps:
        _, port = ps.node("node-0", small_disk / "data", secret, "--min-free-bytes", str(32 * MiB))
        base = f"http://127.0.0.1:{port}"
        sid = http("POST", f"{base}/kontext/preview", {"files": app_files()}).json()["sessionId"]
        accepted = 0
        while (status := put(base, sid, {f"blob{accepted}.txt": BLOB})) == 200:
            accepted += 1
            assert accepted < 10, "the watermark never held"
        assert status == 507 and accepted >= 2, (status, accepted)
        refused = http("PUT", f"{base}/kontext/preview/{sid}/files", {"files": {"x.txt": BLOB}})
        assert refused.json()["code"] == "insufficient_storage"
        assert "x.txt" not in stored(base, sid)
        sessions = sorted((small_disk / "data" / "sessions").iterdir())
        create = http("POST", f"{base}/kontext/preview", {"files": {**app_files(), "b.txt": BLOB}})
        assert create.status == 507 and create.json()["code"] == "insufficient_storage"
        assert sorted((small_disk / "data" / "sessions").iterdir()) == sessions
        # space returns: the same upload is taken
        assert put(base, sid, {}, delete=[f"blob{i}.txt" for i in range(accepted)]) == 200
        assert put(base, sid, {"x.txt": BLOB}) == 200 and "x.txt" in stored(base, sid)


def test_a_disk_that_fills_mid_write_gives_507_and_no_half_update(
    small_disk: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    with processes(tmp_path) as ps:
        _, port = ps.node("node-0", small_disk / "data", secret, "--min-free-bytes", "0")
        base = f"http://127.0.0.1:{port}"
        sid = http("POST", f"{base}/kontext/preview", {"files": app_files()}).json()["sessionId"]
        filler = small_disk / "filler"
        subprocess.run(["fallocate", "-l", str(50 * MiB), str(filler)], check=True)
        before = stored(base, sid)
        # two new files: the first fits, the second does not; neither may be left behind
        update = {"src/App.jsx": "// replaced\n", "a.txt": BLOB, "b.txt": BLOB}
        res = http("PUT", f"{base}/kontext/preview/{sid}/files", {"files": update})
        assert res.status == 507 and res.json()["code"] == "insufficient_storage", res.body
        assert stored(base, sid) == before
        ws = small_disk / "data" / "sessions" / sid / "ws"
        assert "// replaced" not in (ws / "src" / "App.jsx").read_text()
        assert not list(ws.rglob("*.preview-tmp"))
        create = http(
            "POST",
            f"{base}/kontext/preview",
            {"files": {**app_files(), "a.txt": BLOB, "b.txt": BLOB}},
        )
        assert create.status == 507, create.body
        assert [p.name for p in (small_disk / "data" / "sessions").iterdir()] == [sid]
        filler.unlink()
        assert put(base, sid, update) == 200  # recovers when space returns
        assert http("GET", f"{base}/preview/{sid}/").status == 200

"""A node's disk filling up (CONTRACT §2: 507 `insufficient_storage`), on a real small
file system: a 64 MiB tmpfs as the data dir. Below the watermark, creates and uploads are
refused before anything is written; with no watermark, a disk that fills mid-write gives
the same 507 and leaves nothing half stored; and it all recovers when space returns.
Needs root for the mount (CI is root); skipped where mounting is not allowed."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import app_files, http, single_node
from tests.support.processes import poll_until, processes
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


FILL = """
import fs from "node:fs";
import react from "@vitejs/plugin-react";

export default () => {
  // The app's own config runs in the sandbox, and may write where the node cannot count.
  if (fs.existsSync("fill.marker")) fs.writeFileSync("junk.bin", Buffer.alloc(12 << 20, 1));
  return { plugins: [react()] };
};
"""


def status_of(base: str, sid: str) -> dict[str, object]:
    got = http("GET", f"{base}/kontext/preview/{sid}").json()
    assert isinstance(got, dict)
    return got


def test_a_dev_server_writing_past_the_session_disk_limit_is_stopped_until_an_upload(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    limit = 8 << 20
    with processes(tmp_path) as ps:
        _, port = ps.node(
            "node-0", tmp_path / "data", secret, "--sandbox", "required",
            "--session-disk-bytes", str(limit), "--idle-seconds", "2",
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        files = {**app_files(), "vite.config.js": FILL, "fill.marker": "1"}
        made = http("POST", f"{base}/kontext/preview", {"files": files})
        assert made.status == 201, made.body
        sid = made.json()["sessionId"]
        failed = poll_until(lambda: (s := status_of(base, sid))["status"] == "failed" and s, 60)
        assert "disk limit" in str(failed["error"]) and str(limit) in str(failed["error"])
        page = http("GET", f"{base}/preview/{sid}/")
        assert page.status == 502, page.body  # a failed session starts nothing
        metrics = http("GET", f"{base}/metrics").body.decode()
        assert "preview_node_session_disk_stops_total 1.0" in metrics
        # An upload that removes what the config wrote (and its trigger) retries it.
        assert put(base, sid, {}, delete=["junk.bin", "fill.marker"]) == 200
        assert http("GET", f"{base}/preview/{sid}/", timeout=60).status == 200
        ready = poll_until(lambda: (s := status_of(base, sid))["status"] == "ready" and s, 60)
        assert ready.get("error") is None


DEEP = """
import fs from "node:fs";
import react from "@vitejs/plugin-react";

// A tree deeper than Python's recursion limit, then one past PATH_MAX (made by chdir:
// no path that long can be named), in the workspace the node sizes, copies and removes.
const root = process.cwd();
const dig = (name, depth) => {
  fs.mkdirSync(name);
  process.chdir(name);
  for (let i = 0; i < depth; i++) { fs.mkdirSync("d"); process.chdir("d"); }
  fs.writeFileSync("f", "x");
  process.chdir(root);
};
if (fs.existsSync("deep.marker") && !fs.existsSync("deep")) dig("deep", 1200);
if (fs.existsSync("deeper.marker") && !fs.existsSync("deeper")) dig("deeper", 2100);
export default { plugins: [react()] };
"""


def test_a_dev_server_digging_deep_trees_ends_nothing_but_its_own_session(
    tmp_path: Path,
) -> None:
    """Reproduced before the fix: the sweep's os.walk raised RecursionError on the
    1,200-deep tree and the node exited; DELETE's shutil.rmtree did the same."""
    data = tmp_path / "data"
    with single_node(tmp_path, "--sandbox", "required", "--idle-seconds", "2") as node:
        proc, base = node.proc, node.url
        files = {**app_files(), "vite.config.js": DEEP, "deep.marker": "1"}
        made = http("POST", f"{base}/kontext/preview?wait=ready", {"files": files}).json()
        sid = made["sessionId"]
        assert made["status"] == "ready", made
        assert (data / "sessions" / sid / "ws" / "deep" / "d").is_dir()
        other = http("POST", f"{base}/kontext/preview?wait=ready", {"files": app_files()})
        time.sleep(2)  # sweeps (every 0.5 s here) sized the deep workspace
        assert proc.popen.poll() is None, "the node exited"
        assert status_of(base, sid)["status"] in ("ready", "idle")  # within its disk limit
        assert http("GET", f"{base}/kontext/preview/{sid}/files").status == 200

        # Past PATH_MAX: its size can't be known, so it counts as over its limit.
        assert put(base, sid, {"deeper.marker": "1"}) == 200
        http("GET", f"{base}/preview/{sid}/")  # (re)starts it: its config digs on
        failed = poll_until(lambda: (s := status_of(base, sid))["status"] == "failed" and s, 30)
        assert "disk limit" in str(failed["error"])
        assert proc.popen.poll() is None, "the node exited"

        assert http("DELETE", f"{base}/kontext/preview/{sid}").status == 200
        assert not (data / "sessions" / sid).exists()
        assert not [p for p in (data / "sessions").iterdir() if sid in p.name]  # no trash
        oid = other.json()["sessionId"]
        assert http("GET", f"{base}/preview/{oid}/").status == 200
        assert proc.popen.poll() is None

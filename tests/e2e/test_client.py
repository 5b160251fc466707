"""The `preview` command against a real router and node running real Vite (CONTRACT §2).

Every command runs as a subprocess (`python -m previewclient`), as a user would run it;
what reached the session is checked through the router's read-back route.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests.support.processes import free_port, processes
from tests.support.ring import SECRET, ring_text

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "app"
REPO = Path(__file__).resolve().parents[2]
NODE_MAX_FILE_BYTES = 64 * 1024  # lowered so that a node-side 413 is cheap to provoke
TOKEN = "client-test-token-0123456789"
PACKAGE_JSON = {
    "name": "fixture-app",
    "private": True,
    "type": "module",
    "dependencies": {"react": "^19.0.0", "react-dom": "^19.0.0"},
}


@dataclass
class Platform:
    router: str
    token_router: str  # a second router in front of the same node, requiring TOKEN
    tmp: Path


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    tmp = tmp_path_factory.mktemp("client")
    secret = tmp / "secret"
    secret.write_text(SECRET + "\n")
    tokens = tmp / "tokens"
    tokens.write_text(TOKEN + "\n")
    port = free_port()
    router = f"http://127.0.0.1:{port}"
    with processes(tmp) as ps:
        _, node_port = ps.node(
            "node-0",
            tmp / "data",
            secret,
            "--max-running",
            "8",
            "--max-file-bytes",
            str(NODE_MAX_FILE_BYTES),
            public_url=router,
        )
        ring = tmp / "ring.toml"
        ring.write_text(ring_text({"node-0": (node_port, "active")}))
        ps.router(ring, secret, port=port)
        _, token_port = ps.router(ring, secret, "--api-token-file", str(tokens), name="router-tok")
        yield Platform(router, f"http://127.0.0.1:{token_port}", tmp)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The fixture app plus what must never be uploaded."""
    root = tmp_path / "app"
    shutil.copytree(FIXTURE, root)
    (root / "package.json").write_text(json.dumps(PACKAGE_JSON, indent=2))
    extra = {
        "node_modules/junk.js": "junk",
        ".git/x": "git object",
        ".vite/deps/cache.js": "cache",
        "dist/index.js": "built",
        "build/out.js": "built",
        ".env": "SECRET_KEY=do-not-upload",
        ".npmrc": "//registry.example/:_authToken=xyz",
        ".gitignore": "# generated\n*.log\ncoverage/\n/local-notes.md\n",
        "debug.log": "log",
        "coverage/lcov.info": "coverage",
        "local-notes.md": "notes",
        "src/unused.js": "export const unused = 1;\n",
        "docs/local-notes.md": "kept: the pattern is anchored to the top",
    }
    for rel, text in extra.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "public").mkdir()
    (root / "public" / "logo.bin").write_bytes(bytes(range(256)))
    return root


def preview(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "previewclient", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def field(stdout: str, name: str) -> str:
    for line in stdout.splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name!r} line in {stdout!r}")


def up(platform: Platform, project: Path, *args: str) -> tuple[str, str]:
    """`preview up` -> (session ID, preview URL); asserts success."""
    done = preview("up", str(project), "--router", platform.router, *args)
    assert done.returncode == 0, done.stderr
    sid = field(done.stdout, "session").split()[0]
    return sid, field(done.stdout, "preview")


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Accept": "text/html,application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def read_back(platform: Platform, sid: str) -> dict[str, dict[str, str]]:
    status, body = http_get(f"{platform.router}/kontext/preview/{sid}/files")
    assert status == 200, body
    return {f["path"]: f for f in json.loads(body)["files"]}


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# ---- against the running platform -----------------------------------------------------


def test_up_prints_a_url_serving_the_app_and_leaves_out_generated_and_secret_files(
    platform: Platform, project: Path
) -> None:
    sid, url = up(platform, project)
    assert url == f"{platform.router}/preview/{sid}/"
    status, html = http_get(url)
    assert status == 200 and f"/preview/{sid}/".encode() in html, html[:300]

    files = read_back(platform, sid)
    assert set(files) == {
        "index.html",
        "package.json",
        "public/logo.bin",
        "src/App.jsx",
        "src/index.css",
        "src/main.jsx",
        "src/unused.js",
        "docs/local-notes.md",
    }
    assert json.loads(files["package.json"]["content"]) == PACKAGE_JSON
    assert files["public/logo.bin"]["encoding"] == "base64"  # binary survives the round trip
    preview("rm", sid, "--router", platform.router)


def test_watch_pushes_an_edit_and_a_deletion_then_stops_on_sigint(
    platform: Platform, project: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "previewclient", "up", str(project), "--watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PREVIEW_ROUTER": platform.router},
    )
    lines = Lines(proc.stdout)
    try:
        sid = lines.wait_for("session:", 30).split()[1]
        lines.wait_for("watching", 5)
        app = project / "src" / "App.jsx"
        app.write_text(app.read_text().replace("Fixture app", "Watched fixture app"))
        assert "1 changed (src/App.jsx)" in lines.wait_for("pushed", 10)
        (project / "src" / "unused.js").unlink()
        assert "1 deleted (src/unused.js)" in lines.wait_for("pushed", 10)

        files = read_back(platform, sid)
        assert "Watched fixture app" in files["src/App.jsx"]["content"]
        assert "src/unused.js" not in files
        status, page = http_get(f"{platform.router}/preview/{sid}/src/App.jsx")
        assert status == 200 and b"Watched fixture app" in page

        # A push that breaks the build: the node's build errors arrive by the event
        # stream, with their place; the fix clears them.
        good = app.read_text()
        app.write_text("export default function App() {\n  return <div>\n}\n")
        assert "1 changed (src/App.jsx)" in lines.wait_for("pushed", 10)
        assert lines.wait_for("build errors:", 5) == "build errors: 1"
        assert lines.wait_for("  src/App.jsx:", 1).startswith("  src/App.jsx:3:")
        app.write_text(good)
        assert lines.wait_for("build errors:", 10) == "build errors: none"

        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert "stopped watching" in lines.wait_for("stopped", 5)
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Stopping the watch leaves the session alone.
    assert preview("status", sid, "--router", platform.router).returncode == 0
    preview("rm", sid, "--router", platform.router)


def test_status_then_rm_then_status_says_the_session_is_gone(
    platform: Platform, project: Path
) -> None:
    sid, _ = up(platform, project, "--session-id", "client-test-1", "--ttl", "120")
    assert sid == "client-test-1"
    done = preview("status", sid, "--router", platform.router)
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    assert obj["sessionId"] == sid and obj["status"] in ("ready", "idle")

    taken = preview("up", str(project), "--router", platform.router, "--session-id", sid)
    assert taken.returncode == 1
    assert "session_exists" in one_error_line(taken.stderr)

    done = preview("rm", sid, "--router", platform.router)
    assert done.returncode == 0 and f"deleted {sid}" in done.stdout, done.stderr
    gone = preview("status", sid, "--router", platform.router)
    assert gone.returncode == 1 and gone.stdout == ""
    assert one_error_line(gone.stderr).startswith(f"preview: no session {sid} (404 unknown_session")


def test_status_of_a_deleted_encoded_id_is_410_gone(platform: Platform, project: Path) -> None:
    sid, _ = up(platform, project)
    assert sid.startswith("node-0--")
    assert preview("rm", sid, "--router", platform.router).returncode == 0
    gone = preview("status", sid, "--router", platform.router)
    assert gone.returncode == 1
    assert one_error_line(gone.stderr) == (
        f"preview: session {sid} is gone: expired or deleted (410 session_gone)"
    )
    forged = preview("rm", "node-0--" + "a" * 39, "--router", platform.router)
    assert forged.returncode == 1
    assert "404 unknown_session" in one_error_line(forged.stderr)


def test_unreachable_router_is_one_line_and_exit_1(project: Path) -> None:
    router = f"http://127.0.0.1:{free_port()}"
    done = preview("up", str(project), "--router", router)
    assert done.returncode == 1
    assert one_error_line(done.stderr).startswith(f"preview: cannot reach the router at {router}: ")


def test_file_over_the_client_limit_is_refused_before_sending(project: Path) -> None:
    (project / "huge.bin").write_bytes(b"\0" * (8 * 1024 * 1024 + 1))
    router = f"http://127.0.0.1:{free_port()}"  # nothing listens: proves nothing was sent
    done = preview("up", str(project), "--router", router)
    assert done.returncode == 1
    assert one_error_line(done.stderr) == (
        "preview: huge.bin is 8.0 MiB; at most 8.0 MiB per file (list it in .gitignore)"
    )


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ("big", 413, "too_large"),  # over the node's lowered --max-file-bytes
        ("file-dependency", 422, "invalid_content"),
    ],
)
def test_rejected_upload_prints_the_error_and_code(
    platform: Platform, project: Path, change: str, status: int, code: str
) -> None:
    if change == "big":
        (project / "src" / "data.json").write_text("[" + "1," * NODE_MAX_FILE_BYTES + "1]")
    else:
        pkg = {**PACKAGE_JSON, "dependencies": {"left-pad": "file:../left-pad"}}
        (project / "package.json").write_text(json.dumps(pkg))
    done = preview("up", str(project), "--router", platform.router)
    assert done.returncode == 1 and done.stdout == ""
    line = one_error_line(done.stderr)
    assert line.startswith("preview: the router refused: ") and f"({status} {code})" in line


def test_api_token_from_file_or_environment(platform: Platform, tmp_path: Path) -> None:
    denied = preview("status", "anything", "--router", platform.token_router)
    assert denied.returncode == 1
    assert "401 unauthorized" in one_error_line(denied.stderr)
    token_file = tmp_path / "token"
    token_file.write_text(f"# the preview API token\n{TOKEN}\n")
    by_file = preview(
        "status", "nosuch", "--router", platform.token_router, "--token-file", str(token_file)
    )
    assert "404 unknown_session" in one_error_line(by_file.stderr)  # past the token check
    by_env = subprocess.run(
        [sys.executable, "-m", "previewclient", "status", "nosuch"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PREVIEW_ROUTER": platform.token_router, "PREVIEW_API_TOKEN": TOKEN},
    )
    assert "404 unknown_session" in one_error_line(by_env.stderr)
    # with neither: ./run/api-token, the file scripts/run-local writes
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "api-token").write_text(f"{TOKEN}\n")
    env = {k: v for k, v in os.environ.items() if k != "PREVIEW_API_TOKEN"}
    by_local = subprocess.run(
        [sys.executable, "-m", "previewclient", "status", "nosuch"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env={**env, "PREVIEW_ROUTER": platform.token_router, "PYTHONPATH": str(REPO)},
    )
    assert "404 unknown_session" in one_error_line(by_local.stderr)


class Lines:
    """A subprocess's stdout, read by a thread so that waits have deadlines."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.queue.put(line.rstrip("\n"))

    def wait_for(self, prefix: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.queue.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(
                    f"no {prefix!r} line within {seconds} s: {self.seen}"
                ) from None
            self.seen.append(line)
            if line.startswith(prefix):
                return line

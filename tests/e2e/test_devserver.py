"""DevServer against a real Vite: serving under the base, HMR, build errors, isolation.

Each test runs the launcher in a temporary workspace holding tests/fixtures/app and a
`node_modules` symlink to the runtime's node_modules, the layout the node creates.
Needs `npm ci --ignore-scripts` in previewnode/runtime.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from previewnode.devserver import BuildError, DevServer, DevServerConfig, DevServerFailed
from tests.support import vite_client
from tests.support.vite_client import HmrSocket, Response

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "previewnode" / "runtime"
FIXTURE_APP = REPO / "tests" / "fixtures" / "app"
HOST = "preview.example.com"
BASE = "/preview/x/"


@dataclass
class Session:
    workspace: Path
    dev: DevServer = field(init=False)
    port: int = 0
    errors: list[list[BuildError]] = field(default_factory=list)
    changed: trio.Event = field(default_factory=trio.Event)

    def record(self, errors: list[BuildError]) -> None:
        self.errors.append(errors)
        self.changed.set()

    async def next_errors(self) -> list[BuildError]:
        await self.changed.wait()
        self.changed = trio.Event()
        return self.errors[-1]


def make_config(tmp_path: Path, workspace: Path) -> DevServerConfig:
    return DevServerConfig(
        session_id="x",
        workspace=workspace,
        node_modules=workspace / "node_modules",
        cache_dir=tmp_path / "cache",
        runtime_dir=RUNTIME,
        base=BASE,
        allowed_hosts=(HOST,),
        client_port=443,
        client_protocol="wss",
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    ws = tmp_path / "workspace"
    shutil.copytree(FIXTURE_APP, ws)
    (ws / "node_modules").symlink_to(RUNTIME / "node_modules")
    yield ws


@pytest.fixture
async def session(tmp_path: Path, workspace: Path, nursery: trio.Nursery) -> AsyncIterator[Session]:
    session = Session(workspace)
    session.dev = DevServer(make_config(tmp_path, workspace), session.record)
    with trio.fail_after(30):
        address = await nursery.start(session.dev.run)
        assert isinstance(address, tuple)  # unsandboxed: a loopback port
        session.port = address[1]
    yield session
    nursery.cancel_scope.cancel()


async def http_get(port: int, target: str, host: str = HOST) -> Response:
    return await vite_client.http_get(port, target, host)


async def hmr_handshake(port: int, target: str) -> tuple[int, HmrSocket]:
    return await vite_client.hmr_handshake(port, target, HOST)


async def ws_token(port: int) -> str:
    return await vite_client.ws_token(port, BASE, HOST)


async def test_page_and_modules_are_served_under_the_base(session: Session) -> None:
    page = await http_get(session.port, BASE)
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    scripts = re.findall(rb'<script type="module" src="([^"]+)"', page.body)
    assert scripts and all(src.startswith(BASE.encode()) for src in scripts)
    assert f"{BASE}src/main.jsx".encode() in scripts

    module = await http_get(session.port, f"{BASE}src/main.jsx")
    assert module.status == 200
    assert "javascript" in module.headers["content-type"]
    assert b"createRoot" in module.body


async def test_hmr_socket_accepts_the_token_and_pushes_an_update_on_edit(
    session: Session,
) -> None:
    # What a browser does first: load the page's modules, so App.jsx is in the graph.
    for path in ("", "src/main.jsx", "src/App.jsx"):
        assert (await http_get(session.port, BASE + path)).status == 200
    token = await ws_token(session.port)
    status, ws = await hmr_handshake(session.port, f"{BASE}hmr?token={token}")
    assert status == 101
    async with ws.stream:
        assert (await ws.receive_json())["type"] == "connected"
        app = session.workspace / "src" / "App.jsx"
        app.write_text(app.read_text().replace("Fixture app", "Edited app"))
        with trio.fail_after(2):
            while (message := await ws.receive_json())["type"] == "ping":
                pass
        assert message["type"] == "update"
        updates = message["updates"]
        assert isinstance(updates, list)
        assert any(u["path"] == "/src/App.jsx" for u in updates)


async def test_an_idle_dev_server_collects_its_garbage_once(session: Session) -> None:
    for path in ("", "src/main.jsx", "src/App.jsx", "src/index.css"):
        assert (await http_get(session.port, BASE + path)).status == 200
    idle = re.compile(r"idle: full GC in \d+ ms, V8 heap (\d+) -> (\d+) MiB")
    with trio.fail_after(10):  # the launcher's IDLE_GC_MS after the last request
        while not (collected := idle.findall(session.dev.stderr_tail)):
            await trio.sleep(0.1)
    before, after = (int(n) for n in collected[0])
    assert after < before
    await trio.sleep(3)  # longer than IDLE_GC_MS: no request, so no second collection
    assert len(idle.findall(session.dev.stderr_tail)) == 1
    assert (await http_get(session.port, BASE)).status == 200


async def test_hmr_socket_with_an_origin_but_a_wrong_token_is_refused(session: Session) -> None:
    status, ws = await hmr_handshake(session.port, f"{BASE}hmr?token=wrong")
    await ws.stream.aclose()
    assert status == 400


async def test_syntax_error_is_reported_with_its_location_and_cleared_by_a_fix(
    session: Session,
) -> None:
    app = session.workspace / "src" / "App.jsx"
    good = app.read_text()
    app.write_text(good.replace("useState(0)", "useState(0;"))
    with trio.fail_after(10):
        errors = await session.next_errors()
    assert len(errors) == 1
    error = errors[0]
    assert error.file == "src/App.jsx"
    line_no = next(i for i, line in enumerate(good.splitlines(), 1) if "useState(0)" in line)
    assert error.line == line_no
    assert error.column > 0
    assert "PARSE_ERROR" in error.message or "Expected" in error.message

    app.write_text(good)
    with trio.fail_after(10):
        assert await session.next_errors() == []


async def test_files_outside_the_workspace_are_not_served(session: Session) -> None:
    for target in (f"{BASE}@fs/etc/passwd", f"{BASE}@fs/etc/passwd?import", "/etc/passwd"):
        response = await http_get(session.port, target)
        assert b"root:x:0:0" not in response.body, target
    assert (await http_get(session.port, f"{BASE}@fs/etc/passwd")).status == 403


async def test_unknown_host_gets_403(session: Session) -> None:
    assert (await http_get(session.port, BASE, host="evil.example.net")).status == 403


async def test_cancelling_run_kills_the_process_group(tmp_path: Path, workspace: Path) -> None:
    dev = DevServer(make_config(tmp_path, workspace), lambda _: None)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(30):
            await nursery.start(dev.run)
        pid = dev.pid
        assert pid is not None
        assert os.getpgid(pid) == pid, "the launcher leads its own process group"
        nursery.cancel_scope.cancel()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


async def test_launcher_exiting_before_ready_raises_with_its_stderr(
    tmp_path: Path, workspace: Path
) -> None:
    (workspace / "node_modules").unlink()
    dev = DevServer(make_config(tmp_path, workspace), lambda _: None)
    with pytest.raises(DevServerFailed) as info, trio.fail_after(30):
        await dev.run()
    assert dev.address is None
    assert "ENOENT" in info.value.stderr_tail


async def test_tailwind_plugin_from_the_workspace_is_refused_not_run(
    session: Session, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    (session.workspace / "src" / "evil.js").write_text(
        f'import fs from "node:fs"; fs.writeFileSync({str(marker)!r}, "x"); export default {{}};'
    )
    css = session.workspace / "src" / "index.css"
    css.write_text('@import "tailwindcss";\n@plugin "./evil.js";\n')
    with trio.fail_after(10):
        errors = await session.next_errors()
    assert [e.file for e in errors] == ["src/index.css"]
    assert "@plugin" in errors[0].message
    assert not marker.exists()


async def test_import_meta_glob_outside_the_workspace_is_refused(session: Session) -> None:
    module = session.workspace / "src" / "glob.js"
    module.write_text('export const inside = import.meta.glob("./*.jsx");\n')
    listing = await http_get(session.port, f"{BASE}src/glob.js")
    assert listing.status == 200 and b"/src/App.jsx" in listing.body
    module.write_text('export const outside = import.meta.glob("../../*");\n')
    # Vite may serve the cached module until its watcher sees the edit: ask until it has.
    with trio.move_on_after(5):
        while (escaped := await http_get(session.port, f"{BASE}src/glob.js")).body == listing.body:
            await trio.sleep(0.05)
    assert escaped.status == 500
    assert b'Object.assign({"../../' not in escaped.body

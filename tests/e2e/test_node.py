"""`preview-node` as a real process with real Vite dev servers (CONTRACT §2, §5, §6)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import trio

from previewcore.session_id import mint, parse_secrets
from tests.support import vite_client
from tests.support.processes import Proc, Processes, launcher_pids, processes
from tests.support.ring import SECRET
from tests.support.upstreams import Response, get

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "app"
PUBLIC_HOST = "preview.test:18080"
KEYS = parse_secrets(SECRET)


def app_files() -> dict[str, str]:
    return {str(p.relative_to(FIXTURE)): p.read_text() for p in FIXTURE.rglob("*") if p.is_file()}


async def api(
    port: int, method: str, target: str, obj: object | None = None, **kw: Any
) -> Response:
    body = json.dumps(obj).encode() if obj is not None else b""
    headers = [(b"content-type", b"application/json"), *kw.get("headers", [])]
    return await get(port, target, headers, method=method, body=body)


async def create(port: int, **fields: Any) -> dict[str, Any]:
    resp = await api(port, "POST", "/kontext/preview", {"files": app_files(), **fields})
    assert resp.status == 201, resp.body
    return dict(json.loads(resp.body))


async def session(port: int, sid: str) -> dict[str, Any]:
    resp = await api(port, "GET", f"/kontext/preview/{sid}")
    assert resp.status == 200, resp.body
    return dict(json.loads(resp.body))


async def wait_for(predicate: Any, seconds: float, step: float = 0.1) -> Any:
    with trio.fail_after(seconds):
        while True:
            value = await predicate()
            if value:
                return value
            await trio.sleep(step)


class NodeEnv:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.secret = tmp / "secret"
        self.secret.write_text(SECRET + "\n")
        self.data = tmp / "data"


async def start_node(ps: Processes, env: NodeEnv, *extra: str) -> tuple[Proc, int]:
    """A node of its own (not the module's shared one), serving PUBLIC_HOST."""
    return await trio.to_thread.run_sync(
        lambda: ps.node("node-0", env.data, env.secret, *extra, public_url=f"http://{PUBLIC_HOST}")
    )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, int, NodeEnv]]:
    tmp = tmp_path_factory.mktemp("node")
    env = NodeEnv(tmp)
    with processes(tmp) as ps:
        proc, port = ps.node(
            "node-0", env.data, env.secret, "--max-running", "4", public_url=f"http://{PUBLIC_HOST}"
        )
        yield proc, port, env


async def test_create_then_immediate_get_is_held_until_vite_serves(
    node: tuple[Proc, int, NodeEnv],
) -> None:
    _, port, _ = node
    t = time.monotonic()
    obj = await create(port)
    created_ms = (time.monotonic() - t) * 1000
    sid = obj["sessionId"]
    assert obj["status"] in ("starting", "ready") and obj["node"] == "node-0"
    assert obj["previewUrl"] == f"http://{PUBLIC_HOST}/preview/{sid}/"
    assert obj["wsUrl"] == f"ws://{PUBLIC_HOST}/preview/{sid}/hmr"
    page = await get(port, f"/preview/{sid}/")  # immediately: held, never 404
    assert page.status == 200, page.body[:300]
    assert f'src="/preview/{sid}/src/main.jsx"'.encode() in page.body
    assert page.header(b"x-preview-node-load") is not None
    main = await get(port, f"/preview/{sid}/src/main.jsx")
    assert main.status == 200 and b"import" in main.body
    assert main.header(b"content-type").startswith(b"text/javascript")  # type: ignore[union-attr]
    print(f"create -> 201: {created_ms:.1f} ms")


async def test_browser_hmr_request_gets_101_and_an_update_after_put(
    node: tuple[Proc, int, NodeEnv],
) -> None:
    _, port, _ = node
    sid = (await create(port))["sessionId"]
    base = f"/preview/{sid}/"
    assert (await get(port, base)).status == 200
    token = await vite_client.ws_token(port, base, PUBLIC_HOST)
    status, sock = await vite_client.hmr_handshake(port, f"{base}hmr?token={token}", PUBLIC_HOST)
    assert status == 101
    assert (await sock.receive_json())["type"] == "connected"
    # Vite only pushes updates for modules a client has loaded: load them as a page would.
    for path in ("src/main.jsx", "src/App.jsx"):
        assert (await get(port, base + path, [(b"host", PUBLIC_HOST.encode())])).status == 200
    app = app_files()["src/App.jsx"].replace("Count", "Clicks")
    t = time.monotonic()
    resp = await api(port, "PUT", f"/kontext/preview/{sid}/files", {"files": {"src/App.jsx": app}})
    assert resp.status == 200
    with trio.fail_after(2):
        while True:
            msg = await sock.receive_json()
            if msg["type"] == "update":
                break
    print(f"PUT -> HMR update: {(time.monotonic() - t) * 1000:.0f} ms")
    assert any(u["path"].endswith("/src/App.jsx") for u in msg["updates"])  # type: ignore[index,union-attr]
    bad_status, _ = await vite_client.hmr_handshake(
        port, f"{base}hmr?token={token}", "evil.example:1"
    )
    assert bad_status == 400  # Vite's host check stays on behind the proxy


async def test_build_errors_are_listed_then_cleared(node: tuple[Proc, int, NodeEnv]) -> None:
    _, port, _ = node
    sid = (await create(port))["sessionId"]
    assert (await get(port, f"/preview/{sid}/")).status == 200
    broken = "export default function App() {\n  return <div>\n}\n"
    put = await api(
        port, "PUT", f"/kontext/preview/{sid}/files", {"files": {"src/App.jsx": broken}}
    )
    assert put.status == 200, put.body

    async def has_errors() -> list[dict[str, Any]]:
        return list((await session(port, sid))["errors"])

    errors = await wait_for(has_errors, 20)  # generous: a loaded 2-core CI machine
    assert errors[0]["file"] == "src/App.jsx" and errors[0]["line"] >= 2 and errors[0]["message"]
    fixed = {"files": {"src/App.jsx": app_files()["src/App.jsx"]}}
    assert (await api(port, "PUT", f"/kontext/preview/{sid}/files", fixed)).status == 200

    async def cleared() -> bool:
        return not (await session(port, sid))["errors"]

    await wait_for(cleared, 20)


async def test_build_errors_carry_their_line_as_a_browser_sees_them(
    node: tuple[Proc, int, NodeEnv],
) -> None:
    """Reproduced before: line 0 for a syntax error once a browser had loaded the module
    (Vite's error to browsers drops the place), no line for a broken CSS import, and the
    node's absolute path in the message."""
    _, port, env = node
    sid = (await create(port))["sessionId"]
    assert (await get(port, f"/preview/{sid}/")).status == 200
    # The old CSS compiled before the edit lands: Tailwind's plugin stats a file after
    # reading it, so an edit during that compile is taken for the old one (its race).
    for path in ("src/main.jsx", "src/index.css"):
        await get(port, f"/preview/{sid}/{path}", [(b"host", PUBLIC_HOST.encode())])
    files = {
        "src/broken.js": "// one\n// two\nexport const broken = 'unterminated;\n",
        "src/App.jsx": 'import "./broken.js";\n' + app_files()["src/App.jsx"],
        "src/index.css": app_files()["src/index.css"] + '\n@import "./nope.css";\n',
    }
    put = await api(port, "PUT", f"/kontext/preview/{sid}/files", {"files": files})
    assert put.status == 200, put.body
    css_line = files["src/index.css"].split("\n").index('@import "./nope.css";') + 1
    for path in ("src/broken.js", "src/index.css"):  # as a browser loads them
        await get(port, f"/preview/{sid}/{path}", [(b"host", PUBLIC_HOST.encode())])

    last: list[object] = [None]

    async def both() -> dict[str, dict[str, Any]] | None:
        errors = {e["file"]: e for e in (await session(port, sid))["errors"]}
        last[0] = errors
        return errors if {"src/broken.js", "src/index.css"} <= set(errors) else None

    try:
        errors = await wait_for(both, 20)
    except trio.TooSlowError:
        raise AssertionError(f"the errors seen last: {last[0]}") from None
    assert errors["src/broken.js"]["line"] == 3, errors
    assert errors["src/index.css"]["line"] == css_line, errors
    for e in errors.values():
        assert e["column"] >= 1 and str(env.data) not in e["message"], e


async def test_an_unresolved_import_reports_its_importer_and_line(
    node: tuple[Proc, int, NodeEnv],
) -> None:
    _, port, _ = node
    sid = (await create(port))["sessionId"]
    assert (await get(port, f"/preview/{sid}/")).status == 200
    app = app_files()["src/App.jsx"]
    edit = {"src/App.jsx": '\n\nimport Missing from "./components/Missing";\n' + app}
    assert (await api(port, "PUT", f"/kontext/preview/{sid}/files", {"files": edit})).status == 200

    async def found() -> list[dict[str, Any]]:
        return [e for e in (await session(port, sid))["errors"] if e["file"] == "src/App.jsx"]

    (error,) = await wait_for(found, 20)
    assert error["line"] == 3 and error["column"] >= 1, error
    assert "./components/Missing" in error["message"], error


@pytest.mark.parametrize(
    "path",
    [
        "../escape.txt",
        "/etc/escape.txt",
        "a\\b.txt",
        "a\x00b",
        "src/../../x",
        "node_modules/x.js",
        ".npmrc",
        "a//b",
        "./a",
    ],
)
async def test_bad_paths_are_422_and_nothing_is_written(
    node: tuple[Proc, int, NodeEnv], path: str
) -> None:
    _, port, env = node
    before = sorted((env.data / "sessions").iterdir())
    resp = await api(
        port, "POST", "/kontext/preview", {"files": {"index.html": "x", path: "pwned"}}
    )
    assert resp.status == 422 and json.loads(resp.body)["code"] == "invalid_content"
    assert sorted((env.data / "sessions").iterdir()) == before
    assert not (env.tmp / "escape.txt").exists() and not Path("/etc/escape.txt").exists()


async def test_bad_update_changes_nothing(node: tuple[Proc, int, NodeEnv]) -> None:
    _, port, _ = node
    sid = (await create(port))["sessionId"]
    resp = await api(
        port, "PUT", f"/kontext/preview/{sid}/files", {"files": {"src/new.js": "1", "../x": "2"}}
    )
    assert resp.status == 422
    files = json.loads((await api(port, "GET", f"/kontext/preview/{sid}/files")).body)["files"]
    assert "src/new.js" not in {f["path"] for f in files}
    assert {f["path"] for f in files} == set(app_files())


async def test_files_outside_the_workspace_are_never_served(
    node: tuple[Proc, int, NodeEnv],
) -> None:
    _, port, _ = node
    sid = (await create(port))["sessionId"]
    assert (await get(port, f"/preview/{sid}/")).status == 200
    for target in (
        "@fs/etc/passwd",
        "@fs/etc/passwd?raw",
        "@fs/etc/passwd?import&raw",
        "@fs/etc/passwd?url",
        "@fs/etc/passwd?raw??",
        "src/../../../etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "@fs//etc/passwd",
        "node_modules/../../../../etc/passwd",
        "@fs/../../../etc/passwd?raw",
    ):
        resp = await get(port, f"/preview/{sid}/{target}")
        assert b"root:x:0:0" not in resp.body, target


async def test_large_bodies_get_413_without_memory_growth(node: tuple[Proc, int, NodeEnv]) -> None:
    proc, port, _ = node
    base = proc.rss_kib()
    # declared: refused from Content-Length before reading
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(
        b"POST /kontext/preview HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 209715200\r\n\r\n"
    )
    with trio.fail_after(5):
        head = await stream.receive_some(4096)
    assert head.startswith(b"HTTP/1.1 413 ")
    await stream.aclose()
    # chunked: refused once it passes the limit, while streaming 200 MB
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(
        b"POST /kontext/preview HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
    answer = b""
    peak = base
    with trio.fail_after(60):
        for i in range(200 * 16):
            try:
                await stream.send_all(chunk)
            except trio.BrokenResourceError:
                break
            if i % 64 == 0:
                peak = max(peak, proc.rss_kib())
            with trio.move_on_after(0):
                answer += await stream.receive_some(4096)
            if answer:
                break
        with trio.move_on_after(2):
            answer += await stream.receive_some(4096)
    await stream.aclose()
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
    growth = (peak - base) / 1024
    print(f"node RSS growth during a refused 200 MB upload: {growth:.1f} MiB")
    assert growth < 100  # bounded by the 32 MiB limit, not by the 200 MB sent


async def test_crashed_vite_is_restarted_on_the_next_request(
    node: tuple[Proc, int, NodeEnv],
) -> None:
    _, port, _ = node
    sid = (await create(port))["sessionId"]
    assert (await get(port, f"/preview/{sid}/")).status == 200
    pids = launcher_pids(sid)
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)

    async def idle() -> bool:
        return (await session(port, sid))["status"] == "idle"

    await wait_for(idle, 5)
    assert (await get(port, f"/preview/{sid}/")).status == 200  # held while it restarts
    assert launcher_pids(sid) and launcher_pids(sid) != pids


async def test_id_rules_and_load_header(node: tuple[Proc, int, NodeEnv]) -> None:
    _, port, _ = node
    other = mint("node-1", KEYS)
    resp = await get(port, f"/preview/{other}/")
    assert resp.status == 404 and json.loads(resp.body)["code"] == "unknown_session"
    forged = mint("node-0", parse_secrets("q" * 40))
    assert (await get(port, f"/kontext/preview/{forged}")).status == 404
    resp = await get(port, "/preview/some-project/")
    assert resp.status == 404 and resp.header(b"x-preview-unknown-session") == b"1"
    sid = (await create(port))["sessionId"]
    resp = await api(port, "DELETE", f"/kontext/preview/{sid}")
    assert resp.status == 200 and not launcher_pids(sid)
    resp = await get(port, f"/preview/{sid}/")
    assert resp.status == 410 and json.loads(resp.body)["code"] == "session_gone"
    assert resp.header(
        b"x-preview-node-load",
    ).startswith(b"running=")  # type: ignore[union-attr]
    resp = await api(
        port, "POST", "/kontext/preview", {"files": {"a.txt": "x"}, "sessionId": "mine"}
    )
    assert resp.status == 422  # node-local creation never takes a client-chosen ID
    resp = await api(
        port, "PATCH", f"/kontext/preview/{(await create(port))['sessionId']}", {"ttlSeconds": 120}
    )
    assert resp.status == 200
    left = json.loads(resp.body)
    lifetime = datetime.fromisoformat(left["expiresAt"]) - datetime.fromisoformat(left["createdAt"])
    assert lifetime.total_seconds() <= 130  # ~2 minutes, not a day (and not by the date)
    listing = json.loads((await api(port, "GET", "/kontext/preview")).body)
    assert listing["node"] == "node-0" and left["sessionId"] in {
        s["sessionId"] for s in listing["sessions"]
    }


async def test_tooling_versions_never_trigger_an_install(tmp_path: Path) -> None:
    # Without a sandbox the fixed config runs on the runtime's tooling; inside one the app's
    # own config needs its own (test_generated_app.py), so this is the fallback's rule.
    with processes(tmp_path) as ps:
        _, port = await start_node(ps, NodeEnv(tmp_path), "--sandbox", "off")
        await _tooling_never_installs(port)


async def _tooling_never_installs(port: int) -> None:
    pkg = {
        "name": "gen",
        "dependencies": {"react": "^19.0.0", "react-dom": "^19.0.0"},
        "devDependencies": {"vite": "^5.4.0", "@vitejs/plugin-react": "^4.3.0", "typescript": "^5"},
    }
    obj = await create(port, packageJson=pkg)
    assert obj["status"] == "starting"  # not "installing"
    resp = await api(
        port,
        "POST",
        "/kontext/preview",
        {"files": app_files(), "packageJson": {"dependencies": {"x": "file:../x"}}},
    )
    assert resp.status == 422
    resp = await api(
        port,
        "POST",
        "/kontext/preview",
        {"files": app_files(), "packageJson": {"dependencies": {"x": "git+https://h/x.git"}}},
    )
    assert resp.status == 422


async def test_idle_stop_then_wake(tmp_path: Path) -> None:
    env = NodeEnv(tmp_path)
    with processes(tmp_path) as ps:
        _, port = await start_node(ps, env, "--idle-seconds", "1")
        sid = (await create(port))["sessionId"]
        assert (await get(port, f"/preview/{sid}/")).status == 200

        async def idle() -> bool:
            return (await session(port, sid))["status"] == "idle"

        await wait_for(idle, 15, step=0.3)
        assert not launcher_pids(sid)
        t = time.monotonic()
        assert (await get(port, f"/preview/{sid}/")).status == 200
        print(f"wake -> first byte: {(time.monotonic() - t) * 1000:.0f} ms")
        assert (await session(port, sid))["status"] == "ready"


async def test_restart_serves_the_same_ids_and_files(tmp_path: Path) -> None:
    env = NodeEnv(tmp_path)
    with processes(tmp_path) as ps:
        proc, port = await start_node(ps, env)
        sid = (await create(port))["sessionId"]
        await api(
            port, "PUT", f"/kontext/preview/{sid}/files", {"files": {"src/extra.txt": "kept"}}
        )
        assert (await get(port, f"/preview/{sid}/")).status == 200
        proc.signal(signal.SIGTERM)
        assert await trio.to_thread.run_sync(lambda: proc.popen.wait(15)) == 0
        assert not launcher_pids(sid)  # SIGTERM stopped its Vite
        _, port2 = await start_node(ps, env)
        assert (await session(port2, sid))["status"] == "idle"
        assert (await get(port2, f"/preview/{sid}/")).status == 200
        files = json.loads((await api(port2, "GET", f"/kontext/preview/{sid}/files")).body)["files"]
        assert {"path": "src/extra.txt", "content": "kept", "encoding": "utf-8"} in files


async def test_postinstall_never_runs_and_other_deps_are_installed_once(
    node: tuple[Proc, int, NodeEnv],
) -> None:
    _, port, env = node
    marker = env.tmp / "postinstall-ran"
    pkg = {
        "name": "gen",
        "scripts": {
            "preinstall": f"touch {marker}",
            "postinstall": f"touch {marker}",
            "prepare": f"touch {marker}",
        },
        "dependencies": {"react": "^19.0.0", "is-number": "7.0.0"},
    }
    files = {
        **app_files(),
        "src/num.js": "import isNumber from 'is-number';\nexport default isNumber(3);\n",
    }
    resp = await api(
        port, "POST", "/kontext/preview?wait=ready", {"files": files, "packageJson": pkg}
    )
    obj = json.loads(resp.body)
    assert resp.status == 201 and obj["status"] in ("installing", "ready"), obj

    async def ready() -> bool:
        s = await session(port, obj["sessionId"])
        assert s["status"] != "failed", s
        return bool(s["status"] == "ready")

    await wait_for(ready, 120, step=0.5)
    mod = await get(port, f"/preview/{obj['sessionId']}/src/num.js")
    assert mod.status == 200 and b"is-number" in mod.body
    # The app's own set lacks Tailwind, yet its `@import "tailwindcss"` still compiles
    # (reproduced before: "Can't resolve 'tailwindcss' in '{data-dir}/...'", a 500).
    css = await get(port, f"/preview/{obj['sessionId']}/src/index.css")
    assert css.status == 200 and b"tailwindcss v4" in css.body, css.body[:300]
    assert not marker.exists()
    sets = list((env.data / "cache" / "deps").iterdir())
    assert len(sets) == 1
    again = await api(port, "POST", "/kontext/preview", {"files": files, "packageJson": pkg})
    assert json.loads(again.body)["status"] == "starting"  # the same set: no second install


async def test_dependency_sets_no_session_names_are_collected(tmp_path: Path) -> None:
    """Reproduced before: every spec made an install that stayed after its session went.
    Over --max-cache-bytes, sets no registered session names are removed; named ones stay."""
    env = NodeEnv(tmp_path)
    with processes(tmp_path) as ps:
        _, port = await start_node(ps, env, "--max-cache-bytes", "1")
        made = {}
        for version in ("7.0.0", "6.0.0"):
            pkg = {"name": "gen", "dependencies": {"react": "^19.0.0", "is-number": version}}
            resp = await api(
                port,
                "POST",
                "/kontext/preview?wait=ready",
                {"files": app_files(), "packageJson": pkg},
            )
            assert resp.status == 201, resp.body
            made[version] = json.loads(resp.body)["sessionId"]
        deps = env.data / "cache" / "deps"

        async def sets() -> set[str]:
            return {p.name for p in deps.iterdir() if not p.name.startswith(".")}

        both = await sets()
        assert len(both) == 2  # over the cap, but each is a live session's
        await trio.sleep(6)  # a sweep or more: nothing named is taken
        assert await sets() == both
        assert (await api(port, "DELETE", f"/kontext/preview/{made['7.0.0']}")).status == 200

        async def one_left() -> set[str] | None:
            left = await sets()
            return left if len(left) == 1 else None

        left = await wait_for(one_left, 15, step=0.5)
        assert left < both
        assert (await get(port, f"/preview/{made['6.0.0']}/")).status == 200  # its set stayed

        # The shared pnpm store keeps only files a set still links: 7.0.0's own go too.
        store = env.data / "cache" / "pnpm-store"

        async def unlinked() -> list[Path] | None:
            files = [f for f in store.rglob("files/*/*") if f.is_file()]
            assert files, "the store holds no files"
            lone = [f for f in files if f.stat().st_nlink == 1]
            return None if lone else files

        await wait_for(unlinked, 15, step=0.5)


async def test_max_running_holds_under_a_burst_of_creates(tmp_path: Path) -> None:
    """Each create starts a Vite; the least recently used ones are stopped to stay at the cap."""
    env = NodeEnv(tmp_path)
    small = {"index.html": "<!doctype html><p>hi</p>"}
    with processes(tmp_path) as ps:
        _, port = await start_node(ps, env, "--max-running", "2")
        sids = []
        for _ in range(12):
            resp = await api(port, "POST", "/kontext/preview", {"files": small})
            assert resp.status == 201
            sids.append(json.loads(resp.body)["sessionId"])

        async def settled() -> bool:
            statuses = [(await session(port, sid))["status"] for sid in sids]
            return all(s in ("ready", "idle") for s in statuses)

        await wait_for(settled, 30, step=0.3)
        await trio.sleep(0.5)
        alive = [sid for sid in sids if launcher_pids(sid)]
        assert len(alive) <= 2, alive
        load = (await get(port, "/healthz")).header(b"x-preview-node-load")
        assert (
            load is not None
            and load.startswith(b"running=")
            and int(load.split(b"=")[1].split(b"/")[0]) <= 2
        )


async def test_failed_install_marks_the_session_failed_with_npms_error(
    node: tuple[Proc, int, NodeEnv],
) -> None:
    _, port, _ = node
    pkg = {
        "name": "gen",
        "dependencies": {"react": "^19.0.0", "preview-no-such-package-7f3a9c": "1.0.0"},
    }
    resp = await api(port, "POST", "/kontext/preview", {"files": app_files(), "packageJson": pkg})
    sid = json.loads(resp.body)["sessionId"]

    async def failed() -> dict[str, Any] | None:
        s = await session(port, sid)
        return s if s["status"] == "failed" else None

    s = await wait_for(failed, 120, step=0.5)
    assert "preview-no-such-package-7f3a9c" in s["error"] or "404" in s["error"], s["error"]
    page = await get(port, f"/preview/{sid}/", [(b"accept", b"text/html")])
    assert page.status == 502 and page.header(b"content-type").startswith(b"text/html")  # type: ignore[union-attr]
    assert b"session_failed" in page.body
    api_answer = await get(port, f"/preview/{sid}/src/main.jsx")
    assert api_answer.status == 502 and json.loads(api_answer.body)["code"] == "session_failed"


async def test_metrics_describe_sessions_and_vites(node: tuple[Proc, int, NodeEnv]) -> None:
    _, port, _ = node
    sid = (await create(port))["sessionId"]
    assert (await get(port, f"/preview/{sid}/")).status == 200
    body = (await get(port, "/metrics")).body.decode()
    for name in (
        'preview_node_sessions{status="ready"}',
        "preview_node_running_vites",
        "preview_node_vite_rss_bytes",
        "preview_node_vite_starts_total",
        "preview_node_vite_crashes_total",
        "preview_node_vite_start_seconds_bucket",
        "preview_node_create_to_ready_seconds_bucket",
        "preview_node_wakes_total",
        "preview_node_installs_total",
        "preview_node_held_requests_total",
        'preview_node_requests_total{route="preview",status="200"}',
    ):
        assert name in body, name
    running = float(
        next(
            line.split()[1]
            for line in body.splitlines()
            if line.startswith("preview_node_running_vites ")
        )
    )
    rss = float(
        next(
            line.split()[1]
            for line in body.splitlines()
            if line.startswith("preview_node_vite_rss_bytes ")
        )
    )
    assert running >= 1 and rss > 50e6  # at least one real Vite, tens of MB each


async def test_full_node_still_registers_and_answers_503_for_the_preview(tmp_path: Path) -> None:
    """--max-running 1 and its one Vite has an open HMR socket: a create still succeeds
    (registered, idle), and the new preview answers 503 over_capacity instead of evicting."""
    env = NodeEnv(tmp_path)
    with processes(tmp_path) as ps:
        _, port = await start_node(ps, env, "--max-running", "1")
        a = (await create(port))["sessionId"]
        assert (await get(port, f"/preview/{a}/")).status == 200
        token = await vite_client.ws_token(port, f"/preview/{a}/", PUBLIC_HOST)
        status, sock = await vite_client.hmr_handshake(
            port, f"/preview/{a}/hmr?token={token}", PUBLIC_HOST
        )
        assert status == 101
        b = await create(port)
        assert b["status"] == "idle"
        resp = await get(port, f"/preview/{b['sessionId']}/")
        assert resp.status == 503 and json.loads(resp.body)["code"] == "over_capacity"
        assert resp.header(b"retry-after") is not None
        assert (await get(port, f"/preview/{a}/")).status == 200  # the open preview was kept
        await sock.stream.aclose()


async def test_a_silent_socket_gives_up_its_slot_after_the_idle_time(tmp_path: Path) -> None:
    """Reproduced before: one silent HMR socket per running session locked the node
    (503 for every other preview). Silent for --idle-seconds, it no longer holds a slot."""
    env = NodeEnv(tmp_path)
    with processes(tmp_path) as ps:
        _, port = await start_node(ps, env, "--max-running", "1", "--idle-seconds", "2")
        a = (await create(port))["sessionId"]
        assert (await get(port, f"/preview/{a}/")).status == 200
        token = await vite_client.ws_token(port, f"/preview/{a}/", PUBLIC_HOST)
        status, sock = await vite_client.hmr_handshake(
            port, f"/preview/{a}/hmr?token={token}", PUBLIC_HOST
        )
        assert status == 101 and (await sock.receive_json())["type"] == "connected"
        b = (await create(port))["sessionId"]
        busy = await get(port, f"/preview/{b}/")  # the socket just spoke: a keeps its slot
        assert busy.status == 503 and json.loads(busy.body)["code"] == "over_capacity"
        await trio.sleep(2.5)  # silent longer than --idle-seconds (the sweep leaves a be)
        assert (await session(port, a))["status"] == "ready"
        assert (await get(port, f"/preview/{b}/")).status == 200  # a evicted for b
        assert (await session(port, a))["status"] == "idle"
        with trio.fail_after(10):  # its browser learns by the socket closing, and reconnects
            try:
                while (await sock.read_frame())[0] != 0x8:  # until a close frame, or EOF
                    pass
            except EOFError:
                pass
        assert (await get(port, f"/preview/{a}/")).status == 200  # woken, b evicted in turn
        assert (await session(port, b))["status"] == "idle"


async def test_workspace_totals_hold_across_puts(tmp_path: Path) -> None:
    # Reproduced before: with --max-files 4, four PUTs of one new file each stored 8 files.
    with processes(tmp_path) as ps:
        _, port = await start_node(ps, NodeEnv(tmp_path), "--max-files", "4")
        assert len(app_files()) == 4
        sid = (await create(port))["sessionId"]
        files_url = f"/kontext/preview/{sid}/files"
        refused = await api(port, "PUT", files_url, {"files": {"src/extra.js": "1"}})
        assert refused.status == 413 and json.loads(refused.body)["code"] == "too_large"
        replaced = await api(port, "PUT", files_url, {"files": {"src/App.jsx": "x"}})
        assert replaced.status == 200
        swapped = await api(
            port, "PUT", files_url, {"files": {"src/extra.js": "1"}, "delete": ["src/App.jsx"]}
        )
        assert swapped.status == 200
        stored = json.loads((await api(port, "GET", files_url)).body)["files"]
        assert sorted(f["path"] for f in stored) == sorted(
            ["index.html", "src/extra.js", "src/index.css", "src/main.jsx"]
        )

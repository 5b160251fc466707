"""`smoke`: router and node containers serve a preview and an HMR update, as a browser sees it.

Both on the host network, listening on 127.0.0.1 only, in subdomain mode on `localhost`
(as `scripts/run-local`), and as the chart runs them: the images' non-root user, a
read-only root filesystem with its own /tmp, every capability dropped, no new
privileges. The node runs with `--sandbox required` (the chart's default) and gets what
bubblewrap needs of its container, as the chart gives the pod: the seccomp profile from
the chart README (namespaces and mounts allowed) and an unmasked /proc (`unmask=ALL`,
the chart's `procMount: Unmasked`). Not the chart's `hostUsers: false`: rootful podman
without a user namespace for the container, which bubblewrap does not need (it makes its
own as the node's user). The node also gets the host's CA bundle (pnpm installs
dependency sets a session's package.json asks for that the runtime does not satisfy).

The demo app (examples/counter) is created through the router's API, then: its page
200 with the Vite client and the page client, its modules, the HMR WebSocket (`vite-hmr`
subprotocol, the token from the served client, `connected`), a PUT of an edited
`src/App.jsx` and the `update` Vite pushes for it, the edited module served; then a
second session whose package.json names a dependency the runtime lacks (pnpm installs it
in the container); both deleted, each container stopped with SIGTERM (exit 0).

Never: leave a container behind (removed in a `finally`: on success, failure, Ctrl-C,
SIGTERM), or listen anywhere but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import trio

from preview_images.build import IMAGES
from preview_images.podman import CA_BUNDLE, LOGS, ROOT, WORK, Failed, Podman, tail
from preview_images.report import Report
from tests.support import vite_client
from tests.support.processes import free_port

DEMO = ROOT / "examples" / "counter"
CHART_README = ROOT / "charts" / "preview" / "README.md"
DOMAIN = "localhost"
UID = 10001  # the images' `preview` user: it reads the secret and token files
SECRET, TOKEN, RING = (
    "/etc/preview/secret/secret",
    "/etc/preview/token/api-token",
    "/etc/preview/ring/ring.toml",
)
EDIT = ("Hello from a live preview", "Hello from a container")
# A dependency the runtime does not have: the node installs the set with pnpm (registry
# over TLS: the host's CA bundle) in its container.
EXTRA_DEPENDENCY = {"clsx": "^2.1.1"}
T = TypeVar("T")


@dataclass(frozen=True)
class Setup:
    work: Path
    router_port: int
    node_port: int
    token: str
    run_id: str

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.router_port}"

    def name(self, role: str) -> str:
        return f"preview-smoke-{role}-{self.run_id}"


def chart_seccomp_profile() -> dict[str, Any]:
    """The profile the chart README tells operators to install for node pods."""
    section = CHART_README.read_text().split("## Sandboxed dev servers", 1)[1]
    match = re.search(r"```json\n(.*?)```", section, re.S)
    if not match:
        raise Failed(f"no JSON seccomp profile in {CHART_README}'s sandbox section")
    profile: dict[str, Any] = json.loads(match.group(1))
    return profile


def write_setup(work: Path) -> Setup:
    """Secret, API token, ring file and seccomp profile for one smoke run."""
    work.mkdir(parents=True, exist_ok=True)
    router_port, node_port = free_port(), free_port()
    token = secrets.token_urlsafe(32)
    ring = f'[[nodes]]\nname = "node-0"\nurl = "http://127.0.0.1:{node_port}"\nstate = "active"\n'
    for name, text, mode, owner in (
        ("secret", secrets.token_urlsafe(48) + "\n", 0o400, UID),
        ("api-token", token + "\n", 0o400, UID),
        ("ring.toml", ring, 0o444, 0),
        ("seccomp.json", json.dumps(chart_seccomp_profile(), indent=2), 0o444, 0),
    ):
        path = work / name
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chown(path, owner, owner)
    return Setup(work, router_port, node_port, token, f"{os.getpid()}")


def _hardened(name: str) -> list[str]:
    return [
        "run",
        "--detach",
        f"--name={name}",
        "--network=host",
        "--pull=never",
        "--read-only",  # podman still mounts a tmpfs on /tmp, /var/tmp and /run
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
    ]


def node_argv(s: Setup) -> list[str]:
    apparmor = (
        ["--security-opt=apparmor=unconfined"] if Path("/sys/module/apparmor").exists() else []
    )
    return [
        *_hardened(s.name("node")),
        f"--security-opt=seccomp={s.work / 'seccomp.json'}",
        "--security-opt=unmask=ALL",
        *apparmor,
        "--volume=/var/lib/preview",  # anonymous: the image's directory (owned by 10001) copied up
        f"--volume={s.work / 'secret'}:{SECRET}:ro",
        f"--volume={s.work / 'api-token'}:{TOKEN}:ro",
        f"--volume={CA_BUNDLE}:{CA_BUNDLE}:ro",
        IMAGES["node"][1],
        "preview-node",
        "--name=node-0",
        f"--listen=127.0.0.1:{s.node_port}",
        "--data-dir=/var/lib/preview",
        f"--secret-file={SECRET}",
        f"--api-token-file={TOKEN}",
        f"--public-url=http://{DOMAIN}:{s.router_port}",
        f"--preview-domain={DOMAIN}",
        "--sandbox=required",
    ]


def router_argv(s: Setup) -> list[str]:
    return [
        *_hardened(s.name("router")),
        f"--volume={s.work / 'ring.toml'}:{RING}:ro",
        f"--volume={s.work / 'secret'}:{SECRET}:ro",
        f"--volume={s.work / 'api-token'}:{TOKEN}:ro",
        IMAGES["router"][1],
        "preview-router",
        f"--listen=127.0.0.1:{s.router_port}",
        f"--ring={RING}",
        f"--secret-file={SECRET}",
        f"--api-token-file={TOKEN}",
        f"--preview-domain={DOMAIN}",
    ]


def demo_files() -> dict[str, str]:
    return {str(p.relative_to(DEMO)): p.read_text() for p in DEMO.rglob("*") if p.is_file()}


def api(s: Setup, method: str, path: str, body: object | None = None) -> tuple[int, dict[str, Any]]:
    """One /kontext/* call through the router (blocking: run it in a thread)."""
    req = urllib.request.Request(
        s.api + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"content-type": "application/json", "authorization": f"Bearer {s.token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=90) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


async def to_thread(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in a thread; a cancel (a signal) abandons it rather than waiting."""
    return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)


def say(msg: str) -> None:
    print(f"smoke: {msg}", flush=True)


async def _up(podman: Podman, s: Setup, role: str, port: int) -> dict[str, Any]:
    """Wait until the container's /readyz answers 200; its JSON. Failed if it exits first."""
    name = s.name(role)
    with trio.move_on_after(60) as scope:
        while True:
            try:
                res = await vite_client.http_get(port, "/readyz", f"127.0.0.1:{port}")
                if res.status == 200:
                    ready: dict[str, Any] = json.loads(res.body)
                    return ready
            except OSError:
                pass
            if not await to_thread(podman.running, name):
                log = await to_thread(save_logs, podman, s, role)
                raise Failed(f"{name} exited before it was ready; see {log}:\n{tail(log)}")
            await trio.sleep(0.1)
    assert scope.cancelled_caught
    raise Failed(f"{name} not ready within 60 s")


async def create(podman: Podman, s: Setup, files: dict[str, str]) -> tuple[str, str, float]:
    """POST ?wait=ready through the router: (session ID, preview URL, seconds to ready)."""
    t = time.monotonic()
    status, obj = await to_thread(api, s, "POST", "/kontext/preview?wait=ready", {"files": files})
    if status != 201 or obj.get("status") != "ready":
        log = await to_thread(save_logs, podman, s, "node")
        raise Failed(f"POST /kontext/preview?wait=ready -> {status} {obj}\n{log}:\n{tail(log)}")
    return str(obj["sessionId"]), str(obj["previewUrl"]), round(time.monotonic() - t, 2)


async def start(podman: Podman, report: Report, s: Setup, started: list[str]) -> None:
    for role, argv, port in (
        ("node", node_argv(s), s.node_port),
        ("router", router_argv(s), s.router_port),
    ):
        with report.step("smoke", role) as step:
            t = time.monotonic()
            started.append(role)  # before run: a container created but not started goes too
            podman(*argv)
            ready = await _up(podman, s, role, port)
            step.detail = {"readyz": ready}
            more = ""
            if role == "node":
                version = podman("exec", s.name(role), "node", "--version").strip()
                step.detail["node"] = version
                more = f" (sandbox {ready.get('sandbox')}, limits {ready.get('limits')}, Node.js {version})"
            say(f"{role} container ready in {time.monotonic() - t:.1f} s on 127.0.0.1:{port}{more}")


async def page(s: Setup, url: str) -> dict[str, Any]:
    """The preview page with the Vite client and the page client, then its modules."""
    host = urlsplit(url).netloc
    got = await vite_client.http_get(s.router_port, "/", host)
    if got.status != 200 or b"/@vite/client" not in got.body:
        raise Failed(f"GET {url} -> {got.status}: {got.body[:500]!r}")
    if b"__x00__preview-client" not in got.body:
        raise Failed(f"GET {url}: no page client tag in {got.body[:800]!r}")
    # What a browser loads next; Vite pushes updates only for modules a client has loaded.
    for path in ("/@id/__x00__preview-client", "/src/main.jsx", "/src/App.jsx"):
        module = await vite_client.http_get(s.router_port, path, host)
        if module.status != 200:
            raise Failed(f"GET {path} -> {module.status}: {module.body[:500]!r}")
    ctype = got.headers.get("content-type")
    say(
        f"GET {url} -> 200 {ctype} ({len(got.body)} bytes); "
        "page client, src/main.jsx, src/App.jsx -> 200"
    )
    return {"bytes": len(got.body), "content_type": ctype}


async def hmr(s: Setup, sid: str, url: str) -> dict[str, Any]:
    """The HMR WebSocket as a browser opens it, then the update Vite pushes for a PUT edit."""
    host, port = urlsplit(url).netloc, s.router_port
    token = await vite_client.ws_token(port, "/", host)
    status, ws = await vite_client.hmr_handshake(port, f"/hmr?token={token}", host)
    if status != 101:
        raise Failed(f"HMR handshake -> {status}")
    async with ws.stream:
        first = await ws.receive_json()
        if first.get("type") != "connected":
            raise Failed(f"first HMR message: {first}")
        say(f"HMR WebSocket (vite-hmr) -> 101, {first['type']!r}")
        edited = (DEMO / "src" / "App.jsx").read_text().replace(*EDIT)
        t = time.monotonic()
        status, obj = await to_thread(
            api, s, "PUT", f"/kontext/preview/{sid}/files", {"files": {"src/App.jsx": edited}}
        )
        if status != 200:
            raise Failed(f"PUT /kontext/preview/{sid}/files -> {status} {obj}")
        with trio.fail_after(15):
            while (message := await ws.receive_json())["type"] != "update":
                pass
        seen = round(time.monotonic() - t, 3)
    updates = message.get("updates")
    paths = (
        [str(u.get("path")) for u in updates if isinstance(u, dict)]
        if isinstance(updates, list)
        else []
    )
    if "/src/App.jsx" not in paths:
        raise Failed(f"update without /src/App.jsx: {message}")
    served = await vite_client.http_get(port, "/src/App.jsx", host)
    if EDIT[1].encode() not in served.body:
        raise Failed("the edited src/App.jsx is not what Vite serves")
    say(f"PUT src/App.jsx -> 200; 'update' for {', '.join(paths)} after {seen:.3f} s; edit served")
    return {"put_to_update_s": seen, "update": message}


async def stop(podman: Podman, s: Setup, sessions: list[str]) -> dict[str, Any]:
    """Delete the sessions, then SIGTERM each container: both must exit 0."""
    for sid in sessions:
        status, _ = await to_thread(api, s, "DELETE", f"/kontext/preview/{sid}")
        if status != 200:
            raise Failed(f"DELETE /kontext/preview/{sid} -> {status}")
    codes = {}
    for role in ("router", "node"):  # the edge first, as a rollout would
        name = s.name(role)
        podman("stop", "--time=15", name)
        codes[role] = podman("container", "inspect", "--format", "{{.State.ExitCode}}", name)
        codes[role] = codes[role].strip()
    say(f"sessions deleted; SIGTERM: router exited {codes['router']}, node exited {codes['node']}")
    if set(codes.values()) != {"0"}:
        raise Failed(f"containers did not exit 0 on SIGTERM: {codes}")
    return {"exit_codes": codes}


async def _watch_signals(
    scope: trio.CancelScope, signalled: list[int], *, task_status: trio.TaskStatus[None]
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            signalled.append(signum)
            scope.cancel()
            return


async def check(podman: Podman, report: Report, s: Setup, started: list[str]) -> None:
    """The steps; SIGINT or SIGTERM cancels them, then KeyboardInterrupt (see `smoke`)."""
    signalled: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(_watch_signals, nursery.cancel_scope, signalled)
        await steps(podman, report, s, started)
        nursery.cancel_scope.cancel()
    if signalled:
        raise KeyboardInterrupt


async def steps(podman: Podman, report: Report, s: Setup, started: list[str]) -> None:
    await start(podman, report, s, started)
    with report.step("smoke", "session") as step:
        sid, url, took = await create(podman, s, demo_files())
        step.detail = {"sessionId": sid, "previewUrl": url, "create_to_ready_s": took}
        say(f"POST /kontext/preview?wait=ready -> 201, {sid} ready in {took:.2f} s")
    with report.step("smoke", "page") as step:
        step.detail = await page(s, url)
    with report.step("smoke", "hmr") as step:
        step.detail = await hmr(s, sid, url)
    with report.step("smoke", "install") as step:
        files = demo_files()
        manifest = json.loads(files["package.json"])
        manifest["dependencies"].update(EXTRA_DEPENDENCY)
        files["package.json"] = json.dumps(manifest, indent=2)
        installed, _, took = await create(podman, s, files)
        step.detail = {"sessionId": installed, "create_to_ready_s": took}
        say(
            f"POST with {', '.join(EXTRA_DEPENDENCY)} (not in the runtime: pnpm installs it in "
            f"the container) -> 201, ready in {took:.2f} s"
        )
    with report.step("smoke", "stop") as step:
        step.detail = await stop(podman, s, [sid, installed])


def smoke(podman: Podman, report: Report) -> None:
    for _, tag in IMAGES.values():
        if podman.image_id(tag) is None:
            raise Failed(f"no {tag}: run `scripts/images build` first")
    s = write_setup(WORK / "smoke")
    started: list[str] = []  # roles whose container exists
    try:
        try:
            trio.run(check, podman, report, s, started)
        except BaseExceptionGroup as group:  # the nursery's: the one error of the steps
            raise _only(group) from None
        say("ok")
    finally:
        for role in reversed(started):
            save_logs(podman, s, role)
            podman("rm", "--force", "--time=5", "--volumes", s.name(role), check=False)


def save_logs(podman: Podman, s: Setup, role: str) -> Path:
    """The container's output (stdout and stderr) in LOGS/smoke-{role}.log."""
    log = LOGS / f"smoke-{role}.log"
    log.unlink(missing_ok=True)
    podman("logs", s.name(role), log=f"smoke-{role}", check=False)
    return log


def _only(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error

"""One Vite HMR socket per session, through a router, as the browser's Vite client holds it:
the token from `@vite/client`, the `vite-hmr` upgrade, `connected`, then updates. For each
`update` naming `src/App.jsx` the watcher fetches the module the update names (as the
client's `import(path?t=...)` does) and hands the marker it serves to the ledger.

A socket the server closes is reopened (counted as a reconnect, and the page reloaded, as
the Vite client does); edits pushed while it was down are missed, which is what counts.

Never: reconnect more than MAX_CONNECTS times, or wait on a frame past the caller's scope.
"""

from __future__ import annotations

import json

import trio

from bench.soak.client import Client
from bench.soak.edits import MARKER, Ledger
from bench.soak.pages import load_page
from bench.soak.tally import Tally, checked
from tests.support import vite_client
from tests.support.vite_client import HmrSocket

MAX_CONNECTS = 50
CONNECT_TIMEOUT = 15.0
TEXT, CLOSE, PING = 0x1, 0x8, 0x9
PONG = 0xA


async def open_hmr(tally: Tally, port: int, host: str, sid: str) -> HmrSocket | None:
    """A socket that got 101 and `connected`; None (an error tallied) otherwise."""
    base = f"/preview/{sid}/"
    t0 = trio.current_time()
    try:
        with trio.fail_after(CONNECT_TIMEOUT):
            token = await vite_client.ws_token(port, base, host)
            status, sock = await vite_client.hmr_handshake(port, f"{base}hmr?token={token}", host)
            if status != 101:
                await sock.stream.aclose()
                tally.error("hmr connect", f"status {status}", sid=sid, router=port)
                return None
            first = await sock.receive_json()
    except trio.TooSlowError:
        tally.error("hmr connect", "timeout", sid=sid, router=port)
        return None
    except (OSError, trio.BrokenResourceError, EOFError, AssertionError, ValueError) as exc:
        tally.error("hmr connect", type(exc).__name__, sid=sid, router=port, message=str(exc))
        return None
    if first.get("type") != "connected":
        await sock.stream.aclose()
        tally.error("hmr connect", f"first message {first.get('type')}", sid=sid, router=port)
        return None
    tally.ok("hmr connect", trio.current_time() - t0)
    return sock


async def frames_until_closed(sock: HmrSocket) -> None:
    """Read (answering pings) until the server closes; for a socket whose session went."""
    while True:
        try:
            opcode, payload = await sock.read_frame()
        except (EOFError, trio.BrokenResourceError, OSError):
            return
        if opcode == CLOSE:
            return
        if opcode == PING:
            await sock.send_frame(PONG, payload)


class Watcher:
    """The HMR socket of one session, reopened when the server closes it."""

    def __init__(self, tally: Tally, ledger: Ledger, client: Client, host: str, sid: str) -> None:
        self.tally = tally
        self.ledger = ledger
        self.client = client  # the router this browser talks to
        self.host = host
        self.sid = sid
        self.base = f"/preview/{sid}/"

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connects, says started, then watches until cancelled."""
        started = False
        for attempt in range(MAX_CONNECTS):
            if attempt:
                self.tally.event("hmr reconnects")
                await trio.sleep(0.5)
                await load_page(self.tally, self.client, self.sid)  # the client reloads
            sock = await open_hmr(self.tally, self.client.port, self.host, self.sid)
            if sock is None:
                continue
            if not started:
                task_status.started()
                started = True
            try:
                await self._watch(sock)
            finally:
                with trio.CancelScope(shield=True):
                    await sock.stream.aclose()
        self.tally.error("hmr socket", f"gave up after {MAX_CONNECTS} connects", sid=self.sid)
        if not started:
            task_status.started()

    async def _watch(self, sock: HmrSocket) -> None:
        while True:
            try:
                opcode, payload = await sock.read_frame()
            except (EOFError, trio.BrokenResourceError, OSError):
                self.tally.event("hmr closed by the server")
                return
            if opcode == CLOSE:
                self.tally.event("hmr closed by the server")
                return
            if opcode == PING:
                await sock.send_frame(PONG, payload)
                continue
            if opcode != TEXT:
                continue
            arrived = trio.current_time()
            message = json.loads(payload)
            kind = message.get("type")
            self.tally.event(f"hmr messages: {kind}")
            if kind == "update":
                for update in message.get("updates", []):
                    if str(update.get("path", "")).endswith("src/App.jsx"):
                        await self._fetch_marker(update, arrived)
            elif kind == "error":
                detail = str(message.get("err", {}).get("message", ""))[:200]
                self.tally.error("hmr", "vite error message", sid=self.sid, message=detail)

    async def _fetch_marker(self, update: dict[str, object], arrived: float) -> None:
        path = str(update["path"])
        url = path if path.startswith(self.base) else self.base + path.lstrip("/")
        target = f"{url}?t={update.get('timestamp', '')}"
        res = await checked(self.tally, self.client, "hmr module", "GET", target, sid=self.sid)
        if res is None:
            return
        found = MARKER.search(res.body)
        if found is None:
            self.ledger.unknown += 1
            return
        self.ledger.seen(self.sid, found.group(0).decode(), arrived)

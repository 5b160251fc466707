"""`preview up --watch`: print build and runtime errors as the node reports them.

Reads the session's event stream (CONTRACT §2 `/events`) in a background thread and
reconnects with `Last-Event-ID` when the connection drops, so a router restart costs
nothing but a pause. The first message (a snapshot) is not printed: `up` just printed
the session. Stops when the session ends or the process exits (a daemon thread).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable

from previewclient.api import Api, ApiError, RouterUnreachable
from previewclient.report import event_lines
from previewclient.sse import Parser

RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)


class Follower(threading.Thread):
    def __init__(
        self, api: Api, session_id: str, say: Callable[[str], None], warn: Callable[[str], None]
    ) -> None:
        super().__init__(name="preview-events", daemon=True)
        self.api = api
        self.session_id = session_id
        self.say = say
        self.warn = warn
        self.ended = threading.Event()

    def run(self) -> None:
        parser = Parser()
        failures = 0
        while not self.ended.is_set():
            try:
                self._read(parser)
                failures = 0
            except ApiError as exc:
                if exc.status in (404, 410):
                    self.ended.set()
                    return
                self.warn(f"event stream: {exc}")
            except (RouterUnreachable, OSError, http.client.HTTPException) as exc:
                if failures == 0:
                    self.warn(f"event stream interrupted ({exc}); reconnecting")
            failures += 1
            time.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1])

    def _read(self, parser: Parser) -> None:
        resuming = parser.last_id is not None
        with self.api.open_events(self.session_id, parser.last_id) as resp:
            while raw := resp.readline():
                msg = parser.feed(raw.decode("utf-8", "replace"))
                if msg is None:
                    continue
                if msg.event == "session" and not resuming:
                    resuming = True  # the snapshot: `up` printed the session already
                    continue
                try:
                    data = msg.json()
                except ValueError:
                    continue
                for line in event_lines(msg.event, data):
                    self.say(line)
                if msg.event == "ended":
                    self.ended.set()
                    return

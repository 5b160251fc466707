"""Background GET traffic for fault tests: one thread, each URL in turn, every answer kept.

Bounded in count and time whatever happens (a test that forgets to stop it, a peer that
hangs): at most `limit` requests, none started after `seconds`, each at most `timeout`.
A request that gets no HTTP answer at all (refused, reset, timed out) is recorded with
status -1 and why, so a test can tell a lost connection from an error the platform sent.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.client import HTTPException

from tests.support.cluster import http

NO_ANSWER = -1


@dataclass(frozen=True)
class Sample:
    url: str
    started: float  # time.monotonic()
    ended: float
    status: int  # NO_ANSWER: the connection failed
    error: str = ""

    def overlaps(self, start: float, end: float) -> bool:
        """Was this request in flight at some moment of [start, end]?"""
        return self.started <= end and self.ended >= start


class Traffic:
    def __init__(
        self,
        urls: Sequence[str],
        limit: int = 5000,
        seconds: float = 90.0,
        timeout: float = 10.0,
        pause: float = 0.0,
    ) -> None:
        self.urls = list(urls)
        self.limit, self.seconds, self.timeout, self.pause = limit, seconds, timeout, pause
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        for i in range(self.limit):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            url = self.urls[i % len(self.urls)]
            t = time.monotonic()
            try:
                status, error = http("GET", url, timeout=self.timeout).status, ""
            except (OSError, HTTPException) as exc:
                status, error = NO_ANSWER, f"{type(exc).__name__}: {exc}"
            self.samples.append(Sample(url, t, time.monotonic(), status, error))
            if self.pause:
                self._stop.wait(self.pause)

    @contextlib.contextmanager
    def running(self) -> Iterator[Traffic]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(self.timeout + 5)

    def failures(self) -> list[Sample]:
        return [s for s in self.samples if s.status != 200]

    def summary(self) -> Counter[int]:
        return Counter(s.status for s in self.samples)

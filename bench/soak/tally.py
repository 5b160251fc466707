"""What the soak counts: requests and their latencies by kind, errors by kind (with the first
few in full, as evidence), and events that are not errors but must be visible (socket
reconnects, stale keep-alive retries, full reloads, creates and deletes).

Never: drop an error silently, or keep more than ERROR_SAMPLES of them in full.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import h11
import trio

from bench.harness.stats import summary_ms
from bench.soak.client import Client, Response

ERROR_SAMPLES = 40


@dataclass
class Tally:
    started: float = field(default_factory=time.monotonic)
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    error_samples: list[dict[str, Any]] = field(default_factory=list)

    def ok(self, kind: str, seconds: float) -> None:
        self.requests[kind] += 1
        self.latencies.setdefault(kind, []).append(seconds)

    def duration(self, kind: str, seconds: float) -> None:
        """A latency that is not one request (a whole page load, PUT -> HMR update)."""
        self.latencies.setdefault(kind, []).append(seconds)

    def error(self, kind: str, what: str, **detail: Any) -> None:
        """`kind` is what was attempted (page, module, put, ...), `what` how it failed
        (`status 502`, `timeout`, `reset`, ...)."""
        self.requests[kind] += 1
        self.errors[f"{kind}: {what}"] += 1
        if len(self.error_samples) < ERROR_SAMPLES:
            at = round(time.monotonic() - self.started, 2)
            self.error_samples.append({"at_s": at, "kind": kind, "what": what, **detail})

    def event(self, name: str, n: int = 1) -> None:
        self.events[name] += n

    def summary(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "requests_total": sum(self.requests.values()),
            "errors": dict(sorted(self.errors.items())),
            "errors_total": sum(self.errors.values()),
            "events": dict(sorted(self.events.items())),
            "latency_ms": {k: summary_ms(v) for k, v in sorted(self.latencies.items())},
            "error_samples": self.error_samples,
        }


async def checked(
    tally: Tally,
    client: Client,
    kind: str,
    method: str,
    target: str,
    expect: int = 200,
    body: Any = None,
    **detail: Any,
) -> Response | None:
    """The response when its status is `expect` (its latency tallied); else None, the
    failure tallied as an error of `kind` with the router's port and the target."""
    where = {"router": client.port, "target": target, **detail}
    try:
        res = await client.request(method, target, body)
    except trio.TooSlowError:  # the client's bound, which its owner chose
        tally.error(kind, "timeout", **where)
        return None
    except (OSError, trio.BrokenResourceError, h11.ProtocolError) as exc:
        tally.error(kind, type(exc).__name__, message=str(exc)[:200], **where)
        return None
    if res.status != expect:
        tally.error(kind, f"status {res.status}", body=res.body[:300].decode("replace"), **where)
        return None
    tally.ok(kind, res.seconds)
    return res

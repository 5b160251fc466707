"""Logging set-up: one JSON object per line (or plain text for humans), on stderr.

Request and session IDs travel as `extra={...}` fields and appear as keys.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proxycore.server import Exchange

_STD = set(vars(logging.makeLogRecord({})))


_PREFORMATTED = "preformatted_json"


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, _PREFORMATTED, False):
            return str(record.msg)
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


_access = logging.getLogger("preview.access")


def access(ex: Exchange, route: str, **fields: object) -> None:
    """One JSON line per request: request ID, method, path, status, route, duration.

    On the hot path: the line is built here in one `json.dumps` and passed through the
    formatter unchanged, instead of walking a LogRecord's attributes.
    """
    if not _access.isEnabledFor(logging.INFO):
        return
    now = time.time()
    line = json.dumps(
        {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            + f".{int(now * 1000) % 1000:03d}Z",
            "level": "info",
            "logger": "preview.access",
            "msg": "request",
            "request_id": ex.request_id.decode(),
            "method": ex.method.decode("ascii", "replace"),
            "path": ex.target.decode("latin-1")[:512],
            "status": ex.status,
            "route": route,
            "duration_ms": round((time.perf_counter() - ex.started_at) * 1000, 3),
            **fields,
        }
    )
    _access.info(line, extra={_PREFORMATTED: True})


def setup(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

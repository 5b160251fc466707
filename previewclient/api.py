"""A tiny blocking client for the `/kontext/preview` API (CONTRACT §2), on urllib.

Every failure leaves here as one of two exceptions, so the command line maps errors
once: `RouterUnreachable` (no HTTP answer at all) and `ApiError` (an HTTP answer
that is not a success; carries the contract's `error` and `code` when the body has
them). It never retries: a create is not idempotent.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

CREATE_TIMEOUT = 180.0  # covers `?wait=ready` (the node's --hold-seconds) and an install
TIMEOUT = 60.0
EVENTS_TIMEOUT = 60.0  # the node sends a heartbeat every 15 s


class RouterUnreachable(Exception):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the router at {url}: {reason}")
        self.url = url
        self.reason = reason


class ApiError(Exception):
    def __init__(self, status: int, code: str | None, error: str) -> None:
        super().__init__(f"{error} ({status} {code})" if code else f"{error} ({status})")
        self.status = status
        self.code = code
        self.error = error


def _error_from(status: int, body: bytes) -> ApiError:
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        code = doc.get("code")
        return ApiError(status, code if isinstance(code, str) else None, doc["error"])
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
    return ApiError(status, None, text or "no error text in the answer")


class Api:
    def __init__(self, router: str, token: str | None = None) -> None:
        self.router = router.rstrip("/")
        self.token = token

    def _call(
        self, method: str, path: str, body: object | None = None, timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.router + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except OSError as exc:  # urllib's errors, timeouts, resets are all OSErrors
            raise self._failure(exc, timeout) from None
        try:
            doc = json.loads(raw)
        except ValueError:
            raise ApiError(200, None, "the answer is not JSON") from None
        if not isinstance(doc, dict):
            raise ApiError(200, None, "the answer is not a JSON object")
        return doc

    @staticmethod
    def _sid(session_id: str) -> str:
        return urllib.parse.quote(session_id, safe="")

    def create(self, body: dict[str, Any], wait_ready: bool = True) -> dict[str, Any]:
        path = "/kontext/preview" + ("?wait=ready" if wait_ready else "")
        return self._call("POST", path, body, timeout=CREATE_TIMEOUT)

    def session(self, session_id: str) -> dict[str, Any]:
        return self._call("GET", f"/kontext/preview/{self._sid(session_id)}")

    def update(
        self, session_id: str, files: list[dict[str, str]], delete: list[str]
    ) -> dict[str, Any]:
        body = {"files": files, "delete": delete}
        return self._call("PUT", f"/kontext/preview/{self._sid(session_id)}/files", body)

    def files(self, session_id: str) -> dict[str, Any]:
        return self._call("GET", f"/kontext/preview/{self._sid(session_id)}/files")

    def open_events(self, session_id: str, last_event_id: str | None) -> Any:
        """The session's event stream, open (an http.client response to read lines from);
        raises like every other call. Its reads time out after EVENTS_TIMEOUT without even
        a heartbeat."""
        req = urllib.request.Request(
            f"{self.router}/kontext/preview/{self._sid(session_id)}/events", method="GET"
        )
        req.add_header("Accept", "text/event-stream")
        if last_event_id:
            req.add_header("Last-Event-ID", last_event_id)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(req, timeout=EVENTS_TIMEOUT)
        except OSError as exc:
            raise self._failure(exc, EVENTS_TIMEOUT) from None

    def _failure(self, exc: OSError, timeout: float) -> Exception:
        """The one exception a failed call leaves with: ApiError or RouterUnreachable."""
        if isinstance(exc, urllib.error.HTTPError):
            with exc:
                return _error_from(exc.code, exc.read())
        if isinstance(exc, urllib.error.URLError):
            reason = exc.reason
            return RouterUnreachable(self.router, getattr(reason, "strerror", None) or str(reason))
        if isinstance(exc, TimeoutError):
            return RouterUnreachable(self.router, f"no answer within {timeout:.0f} s")
        return RouterUnreachable(self.router, exc.strerror or str(exc))  # reset mid-answer

    def delete(self, session_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/kontext/preview/{self._sid(session_id)}")

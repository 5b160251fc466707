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
        except urllib.error.HTTPError as exc:
            with exc:
                raise _error_from(exc.code, exc.read()) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            text = getattr(reason, "strerror", None) or str(reason)
            raise RouterUnreachable(self.router, text) from None
        except TimeoutError:
            raise RouterUnreachable(self.router, f"no answer within {timeout:.0f} s") from None
        except (ConnectionError, OSError) as exc:  # reset or closed mid-answer
            raise RouterUnreachable(self.router, exc.strerror or str(exc)) from None
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

    def delete(self, session_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/kontext/preview/{self._sid(session_id)}")

"""Errors that become HTTP responses, and the one mapping from an exception to a response.

Code deep in the proxy (or in an app on top of it) raises a `PreviewError` subclass;
only the server's connection loop turns it into a response, through `status_for` and
`error_response`. Apps define their own subclasses (`previewcore.errors`,
`previewnode.errors`): a status, a code and a default message are all they need.
Bodies follow CONTRACT §2: JSON `{"success": false, "error", "code"}`, or a small HTML
page for a browser.
"""

from __future__ import annotations

import html
import json


class PreviewError(Exception):
    """Base of errors that become a response; `status` and `code` come from the contract."""

    status = 500
    code = "internal_error"
    default_message = "internal error"
    retry_after: int | None = None
    close_connection = False
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(message or self.default_message)
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def message(self) -> str:
        return str(self.args[0])


class BadRequest(PreviewError):
    status, code, default_message = 400, "bad_request", "malformed request"


class MalformedHTTP(BadRequest):
    """Framing we cannot trust (smuggling vectors, bare CR/LF): answer and close."""

    close_connection = True


class NotImplementedCoding(PreviewError):
    status, code, default_message = 501, "bad_request", "unsupported transfer coding"
    close_connection = True


class NotFound(PreviewError):
    status, code, default_message = 404, "not_found", "no such route"


class RequestTimeout(PreviewError):
    status, code, default_message = 408, "request_timeout", "request headers not complete in time"
    close_connection = True


class TooLarge(PreviewError):
    status, code, default_message = 413, "too_large", "request body too large"
    close_connection = True


class URITooLong(PreviewError):
    status, code, default_message = 414, "uri_too_long", "request line too long"
    close_connection = True


class HeadersTooLarge(PreviewError):
    status, code, default_message = 431, "headers_too_large", "request header block too large"
    close_connection = True


class VersionNotSupported(PreviewError):
    """A request line naming HTTP/2.0, 3.0 or 0.9: never forwarded as if it were 1.1."""

    status, code = 505, "http_version_not_supported"
    default_message = "this server speaks HTTP/1.0 and 1.1 only"
    close_connection = True


class UpstreamRefused(PreviewError):
    """Connect refused/reset, or a malformed answer: the node is not serving."""

    status, code, default_message = 502, "node_unreachable", "the session's node is unreachable"


class OverCapacity(PreviewError):
    status, code, default_message = 503, "over_capacity", "over capacity, retry shortly"
    retry_after = 2


class UpstreamTimeout(PreviewError):
    status, code, default_message = 504, "node_timeout", "the session's node did not answer in time"


def status_for(exc: BaseException) -> PreviewError:
    """The one mapping from any exception to the error we answer with."""
    if isinstance(exc, PreviewError):
        return exc
    if isinstance(exc, (ConnectionRefusedError, ConnectionResetError, BrokenPipeError)):
        return UpstreamRefused()
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout()
    return PreviewError()


_REASONS = {
    100: "Continue",
    101: "Switching Protocols",
    200: "OK",
    201: "Created",
    204: "No Content",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    507: "Insufficient Storage",
}


def reason(status: int) -> bytes:
    return _REASONS.get(status, "").encode()


def prefers_html(accept: bytes | None) -> bool:
    """A browser navigating sends `text/html` before any JSON preference."""
    if not accept:
        return False
    text = accept.decode("latin-1").lower()
    pos_html = text.find("text/html")
    if pos_html < 0:
        return False
    pos_json = text.find("application/json")
    return pos_json < 0 or pos_html < pos_json


def error_response(
    err: PreviewError, accept: bytes | None = None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """(status, headers, body) for an error, in the shape the client prefers."""
    headers: list[tuple[bytes, bytes]] = [(b"cache-control", b"no-store"), *err.headers]
    if err.retry_after is not None:
        headers.append((b"retry-after", str(err.retry_after).encode()))
    if prefers_html(accept):
        refresh = (
            f'<meta http-equiv="refresh" content="{err.retry_after}">'
            if err.status == 503 and err.retry_after
            else ""
        )
        title = f"{err.status} {reason(err.status).decode()}"
        body = (
            f"<!doctype html><html><head><meta charset=utf-8>{refresh}<title>{title}</title>"
            f"</head><body><h1>{title}</h1><p>{html.escape(err.message)}</p>"
            f"<p><code>{err.code}</code></p></body></html>\n"
        ).encode()
        headers.append((b"content-type", b"text/html; charset=utf-8"))
    else:
        body = json.dumps({"success": False, "error": err.message, "code": err.code}).encode()
        headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    return err.status, headers, body

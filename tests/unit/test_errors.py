"""proxycore.errors: the one mapping from an exception to a status, and the error body."""

from __future__ import annotations

import json

import pytest

from proxycore.errors import (
    BadRequest,
    HeadersTooLarge,
    MalformedHTTP,
    NotFound,
    OverCapacity,
    PreviewError,
    RequestTimeout,
    TooLarge,
    UpstreamRefused,
    UpstreamTimeout,
    URITooLong,
    error_response,
    prefers_html,
    status_for,
)

BROWSER_ACCEPT = b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
Headers = list[tuple[bytes, bytes]]


def header(headers: Headers, name: bytes) -> list[bytes]:
    return [v for k, v in headers if k == name]


# --- the contract's table (CONTRACT §2) -------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "status", "code", "closes"),
    [
        (BadRequest, 400, "bad_request", False),
        (MalformedHTTP, 400, "bad_request", True),
        (NotFound, 404, "not_found", False),
        (RequestTimeout, 408, "request_timeout", True),
        (TooLarge, 413, "too_large", True),
        (URITooLong, 414, "uri_too_long", True),
        (HeadersTooLarge, 431, "headers_too_large", True),
        (UpstreamRefused, 502, "node_unreachable", False),
        (OverCapacity, 503, "over_capacity", False),
        (UpstreamTimeout, 504, "node_timeout", False),
    ],
)
def test_proxy_errors_carry_the_contract_status_and_code(
    cls: type[PreviewError], status: int, code: str, closes: bool
) -> None:
    err = cls()
    assert (err.status, err.code, err.close_connection) == (status, code, closes)
    assert err.message == cls.default_message


def test_over_capacity_tells_the_client_when_to_retry() -> None:
    assert OverCapacity().retry_after == 2
    assert OverCapacity(retry_after=9).retry_after == 9
    assert NotFound().retry_after is None


def test_a_given_message_replaces_the_default() -> None:
    assert BadRequest("no such thing").message == "no such thing"
    assert BadRequest("").message == "malformed request"


# --- status_for -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (ConnectionRefusedError(111, "refused"), 502, "node_unreachable"),
        (ConnectionResetError(104, "reset"), 502, "node_unreachable"),
        (BrokenPipeError(32, "pipe"), 502, "node_unreachable"),
        (TimeoutError(), 504, "node_timeout"),
        (ValueError("/etc/secret is not valid"), 500, "internal_error"),
        (RuntimeError("boom"), 500, "internal_error"),
        (KeyError("k"), 500, "internal_error"),
    ],
)
def test_status_for_maps_each_exception_kind_once(
    exc: BaseException, status: int, code: str
) -> None:
    err = status_for(exc)
    assert (err.status, err.code) == (status, code)


def test_a_preview_error_passes_through_status_for_unchanged() -> None:
    err = OverCapacity("full", retry_after=5)
    assert status_for(err) is err


def test_an_unexpected_exception_never_leaks_its_text_into_the_answer() -> None:
    err = status_for(ValueError("/etc/secret is not valid"))
    assert err.message == "internal error"
    _, _, body = error_response(err)
    assert b"secret" not in body


# --- prefers_html -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, False),
        (b"", False),
        (b"*/*", False),
        (b"application/json", False),
        (b"text/html", True),
        (b"TEXT/HTML", True),
        (BROWSER_ACCEPT, True),
        (b"text/html, application/json", True),
        (b"application/json, text/html", False),
        # position decides, not q-values
        (b"application/json;q=0.1, text/html", False),
        (b"text/plain", False),
    ],
)
def test_html_is_preferred_only_when_text_html_comes_before_json(
    accept: bytes | None, expected: bool
) -> None:
    assert prefers_html(accept) is expected


# --- error_response ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "err",
    [BadRequest(), NotFound("no such route /x"), UpstreamTimeout(), OverCapacity(), TooLarge()],
)
def test_a_non_browser_gets_the_contract_json_shape(err: PreviewError) -> None:
    status, headers, body = error_response(err, b"application/json")
    assert status == err.status
    assert json.loads(body) == {"success": False, "error": err.message, "code": err.code}
    assert header(headers, b"content-type") == [b"application/json"]
    assert header(headers, b"content-length") == [str(len(body)).encode()]
    assert header(headers, b"cache-control") == [b"no-store"]


def test_without_accept_the_answer_is_json() -> None:
    _, headers, body = error_response(NotFound())
    assert header(headers, b"content-type") == [b"application/json"]
    assert json.loads(body)["code"] == "not_found"


@pytest.mark.parametrize(
    ("err", "title"),
    [
        (NotFound(), "404 Not Found"),
        (BadRequest(), "400 Bad Request"),
        (UpstreamRefused(), "502 Bad Gateway"),
        (OverCapacity(), "503 Service Unavailable"),
    ],
)
def test_a_browser_gets_a_small_html_page_with_the_same_status(
    err: PreviewError, title: str
) -> None:
    status, headers, body = error_response(err, BROWSER_ACCEPT)
    text = body.decode()
    assert status == err.status
    assert text.startswith("<!doctype html>")
    assert f"<title>{title}</title>" in text and f"<h1>{title}</h1>" in text
    assert f"<code>{err.code}</code>" in text
    assert header(headers, b"content-type") == [b"text/html; charset=utf-8"]
    assert header(headers, b"content-length") == [str(len(body)).encode()]


@pytest.mark.parametrize("accept", [None, BROWSER_ACCEPT])
def test_retry_after_is_sent_exactly_when_the_error_has_one(accept: bytes | None) -> None:
    _, with_retry, _ = error_response(OverCapacity(retry_after=7), accept)
    _, without, _ = error_response(NotFound(), accept)
    assert header(with_retry, b"retry-after") == [b"7"]
    assert header(without, b"retry-after") == []


@pytest.mark.parametrize(
    ("err", "refresh"),
    [
        (OverCapacity(retry_after=7), '<meta http-equiv="refresh" content="7">'),
        (OverCapacity(), '<meta http-equiv="refresh" content="2">'),
        (NotFound(retry_after=7), None),  # a retry hint on a 404 never reloads the page
        (UpstreamTimeout(), None),
    ],
)
def test_only_a_503_page_refreshes_itself_after_retry_after(
    err: PreviewError, refresh: str | None
) -> None:
    _, _, body = error_response(err, BROWSER_ACCEPT)
    if refresh is None:
        assert b"http-equiv" not in body
    else:
        assert refresh.encode() in body


def test_the_html_page_escapes_the_message() -> None:
    err = BadRequest('<script>alert("x")</script> & <img src=x onerror=1>')
    _, _, body = error_response(err, BROWSER_ACCEPT)
    assert b"<script>" not in body and b"<img" not in body
    assert b"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img" in body


def test_the_json_body_carries_the_message_verbatim_and_non_ascii_safely() -> None:
    err = BadRequest('bad "path" <é>')
    _, headers, body = error_response(err)
    assert json.loads(body)["error"] == 'bad "path" <é>'
    assert header(headers, b"content-length") == [str(len(body)).encode()]


def test_an_errors_own_headers_are_sent_before_the_framing() -> None:
    class Marked(NotFound):
        headers = ((b"x-mark", b"1"),)

    _, headers, _ = error_response(Marked())
    assert [k for k, _ in headers] == [
        b"cache-control",
        b"x-mark",
        b"content-type",
        b"content-length",
    ]


def test_a_full_disk_is_507_insufficient_storage_and_the_watermark_decides() -> None:
    from previewcore.errors import InsufficientStorage
    from previewnode.workspace import room_for

    err = InsufficientStorage()
    assert (err.status, err.code, err.close_connection) == (507, "insufficient_storage", False)
    assert room_for(incoming=10, free=100, min_free=90)
    assert not room_for(incoming=11, free=100, min_free=90)
    assert room_for(incoming=10**12, free=0, min_free=0)  # no watermark

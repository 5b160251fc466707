"""The node's route(): request target -> action on one of its sessions (pure)."""

from __future__ import annotations

import pytest

from previewcore.decisions import Local, Redirect, Reject
from previewcore.session_id import mint, parse_secrets
from previewnode.routes import Api, Preview, SessionRedirect, route
from proxycore.errors import BadRequest, NotFound

SID = mint("node-0", parse_secrets("k" * 40))


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("GET", "/healthz", Local("/healthz")),
        ("GET", "/readyz?x=1", Local("/readyz")),
        ("GET", "/metrics", Local("/metrics")),
        ("GET", f"/preview/{SID}/", Preview(SID)),
        ("GET", f"/preview/{SID}/src/App.jsx?t=1", Preview(SID)),
        ("GET", f"/preview/{SID}/hmr?token=x", Preview(SID)),
        ("GET", "/preview/my-project/", Preview("my-project")),
        ("GET", f"/preview/{SID}", SessionRedirect(SID, "")),
        ("GET", f"/preview/{SID}?a=1", SessionRedirect(SID, "?a=1")),
        ("POST", "/kontext/preview", Api("create")),
        ("POST", "/kontext/preview?wait=ready", Api("create", wait_ready=True)),
        ("POST", "/kontext/preview?x=1&wait=ready", Api("create", wait_ready=True)),
        ("POST", "/kontext/preview?wait=readyish", Api("create")),
        ("GET", "/kontext/preview", Api("list")),
        ("GET", "/kontext/preview/", Api("list")),
        ("GET", f"/kontext/preview/{SID}", Api("get", SID)),
        ("PATCH", f"/kontext/preview/{SID}", Api("extend", SID)),
        ("DELETE", f"/kontext/preview/{SID}", Api("delete", SID)),
        ("PUT", f"/kontext/preview/{SID}/files", Api("put_files", SID)),
        ("GET", f"/kontext/preview/{SID}/files", Api("get_files", SID)),
        ("GET", f"/kontext/preview/{SID}/events", Api("events", SID)),
        ("GET", "http://node/kontext/preview/abc", Api("get", "abc")),  # absolute form
    ],
)
def test_routes(method: str, target: str, expected: object) -> None:
    assert route(method, target, None) == expected


@pytest.mark.parametrize(
    ("method", "target", "error"),
    [
        ("PUT", "/kontext/preview", NotFound),
        ("DELETE", "/kontext/preview", NotFound),
        ("POST", f"/kontext/preview/{SID}", NotFound),
        ("PUT", f"/kontext/preview/{SID}", NotFound),
        ("POST", f"/kontext/preview/{SID}/files", NotFound),
        ("POST", f"/kontext/preview/{SID}/events", NotFound),
        ("GET", f"/kontext/preview/{SID}/", NotFound),
        ("GET", f"/kontext/preview/{SID}/files/x", NotFound),
        ("GET", "/kontext/other", NotFound),
        ("GET", "/", NotFound),
        ("GET", "/src/main.jsx", NotFound),  # no Referer: nothing to bounce to
        ("GET", f"/preview/{SID}/../../kontext/preview", BadRequest),
        ("GET", f"/preview/{SID}/%2e%2e/x", BadRequest),
        ("GET", f"/preview/{SID}/a%2fb", BadRequest),
        ("GET", "*", BadRequest),
    ],
)
def test_refusals_come_back_as_reject(method: str, target: str, error: type) -> None:
    decision = route(method, target, None)
    assert isinstance(decision, Reject) and type(decision.error) is error


@pytest.mark.parametrize(
    ("referer", "expected"),
    [
        (f"http://h:8080/preview/{SID}/", Redirect(307, f"/preview/{SID}/logo.svg?v=2")),
        (f"/preview/{SID}/deep/page", Redirect(307, f"/preview/{SID}/logo.svg?v=2")),
        ("http://h/preview/not..valid/", Reject()),
        ("http://h/elsewhere/", Reject()),
    ],
)
def test_root_absolute_urls_bounce_to_the_referring_session(referer: str, expected: object) -> None:
    decision = route("GET", "/logo.svg?v=2", referer)
    if isinstance(expected, Reject):
        assert isinstance(decision, Reject) and isinstance(decision.error, NotFound)
    else:
        assert decision == expected


def test_route_classes_label_metrics() -> None:
    classes = {
        route("GET", t, None).route_class
        for t in ("/healthz", f"/preview/{SID}/", f"/preview/{SID}", "/kontext/preview", "/x")
    }
    assert classes == {"local", "preview", "redirect", "api", "error"}

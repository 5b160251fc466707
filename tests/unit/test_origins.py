"""Preview origins, viewer tokens, the API's CORS and JSON rules (pure)."""

from __future__ import annotations

import pytest

from previewcore.cors import check_origin, parse_origins, preflight
from previewcore.decisions import Local, Reject
from previewcore.errors import ForbiddenOrigin, UnknownSession, UnsupportedMediaType
from previewcore.jsonbody import decode, require_json
from previewcore.session_id import mint, parse_secrets
from previewcore.urls import host_session, is_dns_label
from previewcore.viewer import (
    cookie_allows,
    cookie_values,
    mint_token,
    set_cookie,
    split_token,
    verify_token,
)
from previewnode.api import CreateBody
from previewnode.routes import Api, Preview
from previewnode.routes import route as node_route
from proxycore.errors import BadRequest, NotFound
from router.ring import parse_ring
from router.routing import Create, Forward, Preflight
from router.routing import route as router_route

KEYS = parse_secrets("k" * 40)
OTHER_KEYS = parse_secrets("o" * 40)
SID = mint("node-0", KEYS)
SID_B = mint("node-0", KEYS)
RING = parse_ring('[[nodes]]\nname = "node-0"\nurl = "http://127.0.0.1:9000"\n')
DOMAIN = "preview.test"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (f"{SID}.{DOMAIN}".encode(), SID),
        (f"{SID}.{DOMAIN}:8080".encode(), SID),
        (f"{SID.upper()}.PREVIEW.TEST".encode(), SID),  # host names are case-insensitive
        (f"{SID}.{DOMAIN}.".encode(), SID),  # a fully qualified name
        (b"my-project.preview.test", "my-project"),
        (DOMAIN.encode(), None),  # the bare domain: the API host
        (b"api.example.com", None),
        (f"a.{SID}.{DOMAIN}".encode(), None),  # only one label under the domain
        (f"{SID}.{DOMAIN}.evil.com".encode(), None),
        (f"{SID}.evilpreview.test".encode(), None),
        (b"my_project.preview.test", None),  # not a host label
        (b"-x.preview.test", None),
        (b"[::1]:8080", None),
        (None, None),
    ],
)
def test_the_host_names_the_session_in_subdomain_mode(
    host: bytes | None, expected: str | None
) -> None:
    assert host_session(host, DOMAIN) == expected
    assert host_session(host, None) is None  # path mode: the host never names a session


@pytest.mark.parametrize(
    ("sid", "ok"),
    [("proj-1", True), ("a" * 63, True), ("a" * 64, False), ("Proj", False), ("p_1", False)],
)
def test_client_chosen_ids_must_be_host_labels_in_subdomain_mode(sid: str, ok: bool) -> None:
    assert is_dns_label(sid) is ok


def rr(target: str, host: str, method: str = "GET"):
    return router_route(method, target, None, RING, KEYS, host=host.encode(), preview_domain=DOMAIN)


@pytest.mark.parametrize(
    "target", ["/", "/about", "/kontext/preview", f"/kontext/preview/{SID}", "/healthz", "/metrics"]
)
def test_on_a_preview_host_every_path_belongs_to_the_app(target: str) -> None:
    for host in (f"{SID}.{DOMAIN}", f"{SID}.{DOMAIN}:8080"):
        d = rr(target, host)
        assert isinstance(d, Forward) and d.route_class == "preview" and d.session_id == SID
    assert node_route(
        "GET", target, None, host=f"{SID}.{DOMAIN}".encode(), preview_domain=DOMAIN
    ) == Preview(SID)


def test_the_api_host_serves_the_api_and_no_preview() -> None:
    assert isinstance(rr("/kontext/preview", DOMAIN, "POST"), Create)
    assert isinstance(rr("/kontext/preview", "api.example.com", "OPTIONS"), Preflight)
    d = rr(f"/kontext/preview/{SID}/token", DOMAIN, "POST")
    assert isinstance(d, Forward) and d.route_class == "api"
    for target in (f"/preview/{SID}/", f"/preview/{SID}/src/main.jsx"):
        d = rr(target, DOMAIN)
        assert isinstance(d, Reject) and isinstance(d.error, NotFound)
        n = node_route("GET", target, None, host=DOMAIN.encode(), preview_domain=DOMAIN)
        assert isinstance(n, Reject)
    assert node_route("GET", "/healthz", None, host=b"x", preview_domain=DOMAIN) == Local(
        "/healthz"
    )
    assert node_route(
        "POST", f"/kontext/preview/{SID}/token", None, host=b"x", preview_domain=DOMAIN
    ) == Api("token", SID)


def test_no_referer_bounce_in_subdomain_mode() -> None:
    d = router_route(
        "GET",
        "/logo.svg",
        f"http://h/preview/{SID}/",
        RING,
        KEYS,
        host=DOMAIN.encode(),
        preview_domain=DOMAIN,
    )
    assert isinstance(d, Reject)


def test_a_forged_id_on_a_preview_host_is_404_without_a_node() -> None:
    forged = SID[:-1] + ("a" if SID[-1] != "a" else "b")
    d = rr("/", f"{forged}.{DOMAIN}")
    assert isinstance(d, Reject) and isinstance(d.error, UnknownSession)


# --- viewer tokens and cookies ----------------------------------------------------------


def test_a_viewer_token_opens_its_session_until_it_expires() -> None:
    token = mint_token(SID, 2_000, KEYS)
    assert verify_token(SID, token, KEYS, now=1_999)
    assert not verify_token(SID, token, KEYS, now=2_000)  # expired
    assert not verify_token(SID_B, token, KEYS, now=1_000)  # bound to its session
    assert not verify_token(SID, token, OTHER_KEYS, now=1_000)  # another secret


@pytest.mark.parametrize(
    "forged",
    ["", "2000", "2000.", ".abc", "abc.def", "9999999999999.x", "3000.{mac}", "2000.{mac}x"],
)
def test_forged_tokens_are_refused(forged: str) -> None:
    mac = mint_token(SID, 2_000, KEYS).partition(".")[2]
    assert not verify_token(SID, forged.format(mac=mac), KEYS, now=1_000)


def test_only_a_cookie_bound_to_this_session_counts_among_several() -> None:
    mine = mint_token(SID, 2_000, KEYS)
    theirs = mint_token(SID_B, 2_000, KEYS)  # e.g. set for the parent domain by B's page
    header = f"a=1; preview_viewer={theirs}; preview_viewer={mine}; b=2".encode()
    assert cookie_values(header) == [theirs, mine]
    assert cookie_allows(header, SID, KEYS, now=1_000)
    assert not cookie_allows(f"preview_viewer={theirs}".encode(), SID, KEYS, now=1_000)
    assert not cookie_allows(None, SID, KEYS, now=1_000)


def test_the_cookie_is_host_only_http_only_and_iframe_friendly_when_secure() -> None:
    secure = set_cookie("t", 60, path="/", secure=True).decode()
    assert secure.split("; ") == [
        "preview_viewer=t",
        "Path=/",
        "Max-Age=60",
        "HttpOnly",
        "Secure",
        "SameSite=None",
        "Partitioned",
    ]
    assert "Domain" not in secure
    assert "SameSite=Lax" in set_cookie("t", 60, path="/", secure=False).decode()


def test_the_token_is_taken_out_of_the_query() -> None:
    assert split_token("a=1&preview_token=x.y&b=2") == ("x.y", "a=1&b=2")
    assert split_token("a=1") == (None, "a=1")


# --- the API against browsers ------------------------------------------------------------


ALLOWED = parse_origins("https://gen.example, http://localhost:5173/")


def test_requests_without_origin_are_not_browsers_and_pass() -> None:
    assert check_origin(None, ALLOWED) == []


def test_an_allowed_origin_gets_cors_headers_and_preflight() -> None:
    assert (b"access-control-allow-origin", b"https://gen.example") in check_origin(
        b"https://gen.example", ALLOWED
    )
    headers = dict(preflight(b"http://localhost:5173", ALLOWED))
    assert headers[b"access-control-allow-origin"] == b"http://localhost:5173"
    assert b"authorization" in headers[b"access-control-allow-headers"]
    assert b"PUT" in headers[b"access-control-allow-methods"]


@pytest.mark.parametrize(
    "origin", [b"https://evil.example", b"null", b"https://gen.example.evil.com"]
)
def test_any_other_origin_is_403(origin: bytes) -> None:
    with pytest.raises(ForbiddenOrigin) as info:
        check_origin(origin, ALLOWED)
    assert (info.value.status, info.value.code) == (403, "forbidden_origin")
    with pytest.raises(ForbiddenOrigin):
        preflight(origin, ALLOWED)
    with pytest.raises(ForbiddenOrigin):
        check_origin(origin, frozenset())  # no origins configured: no browser may


@pytest.mark.parametrize("bad", ["gen.example", "ftp://x", "https://x/path", "https://"])
def test_origin_flags_must_be_origins(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_origins(bad)


@pytest.mark.parametrize(
    ("ctype", "ok"),
    [
        (b"application/json", True),
        (b"application/json; charset=utf-8", True),
        (b"Application/JSON", True),
        (b"text/plain", False),  # what a cross-site form can send without a preflight
        (b"application/x-www-form-urlencoded", False),
        (b"multipart/form-data; boundary=x", False),
        (None, False),
    ],
)
def test_api_bodies_must_be_json(ctype: bytes | None, ok: bool) -> None:
    if ok:
        require_json(ctype)
    else:
        with pytest.raises(UnsupportedMediaType) as info:
            require_json(ctype)
        assert (info.value.status, info.value.code) == (415, "unsupported_media_type")


@pytest.mark.parametrize("levels", [70, 1_000, 100_000])
def test_deeply_nested_json_is_400_not_500(levels: int) -> None:
    body = b'{"packageJson": ' + b'{"a":' * levels + b"1" + b"}" * levels + b"}"
    with pytest.raises(BadRequest, match="nested deeper"):
        decode(body, CreateBody)
    assert decode(b'{"packageJson": {"a": {"b": [1, [2]]}}}', CreateBody).packageJson

"""proxycore.headers: one proxy hop's header rewriting, the Go/Caddy checklist (pure)."""

from __future__ import annotations

import re

import pytest

from proxycore.headers import (
    HOP_BY_HOP,
    Network,
    connection_tokens,
    downstream_response_headers,
    end_to_end,
    is_trusted,
    is_websocket_upgrade,
    parse_trusted,
    request_id,
    upstream_request_headers,
)

H = list[tuple[bytes, bytes]]
MINTED_RE = re.compile(rb"^[0-9a-f]{24}$")
TRUSTED = parse_trusted("10.0.0.0/8,::1")


def names(headers: H) -> list[bytes]:
    return [k for k, _ in headers]


def values(headers: H, name: bytes) -> list[bytes]:
    return [v for k, v in headers if k == name]


def upstream(
    headers: H,
    *,
    peer: str = "203.0.113.7",
    trusted: bool = False,
    request_id: bytes = b"rid-1",
    content_length: int | None = None,
    chunked: bool = False,
    upgrade: bool = False,
) -> H:
    return upstream_request_headers(
        headers,
        peer=peer,
        trusted=trusted,
        request_id=request_id,
        content_length=content_length,
        chunked=chunked,
        upgrade=upgrade,
    )


# --- end_to_end -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HOP_BY_HOP))
def test_every_hop_by_hop_header_is_dropped(name: bytes) -> None:
    assert end_to_end([(b"host", b"a"), (name, b"x"), (b"x-app", b"1")]) == [
        (b"host", b"a"),
        (b"x-app", b"1"),
    ]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # a header named in Connection is hop-by-hop for this hop only
        (
            [(b"connection", b"x-secret"), (b"x-secret", b"1"), (b"x-app", b"2")],
            [(b"x-app", b"2")],
        ),
        # tokens are a comma list, any case, any spacing, empty items ignored
        (
            [
                (b"connection", b" X-One ,, x-TWO "),
                (b"x-one", b"1"),
                (b"x-two", b"2"),
                (b"a", b"3"),
            ],
            [(b"a", b"3")],
        ),
        # several Connection headers all count
        (
            [
                (b"connection", b"x-one"),
                (b"connection", b"x-two"),
                (b"x-one", b"1"),
                (b"x-two", b"2"),
            ],
            [],
        ),
        # order and repeated end-to-end headers are preserved
        (
            [(b"set-cookie", b"a=1"), (b"keep-alive", b"timeout=5"), (b"set-cookie", b"b=2")],
            [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")],
        ),
        ([], []),
    ],
)
def test_hop_by_hop_and_connection_named_headers_never_cross_the_hop(
    headers: H, expected: H
) -> None:
    assert end_to_end(headers) == expected


def test_end_to_end_also_drops_the_names_it_is_told_to() -> None:
    headers = [(b"x-preview-node-load", b"running=1/2"), (b"etag", b'"1"')]
    assert end_to_end(headers, frozenset({b"x-preview-node-load"})) == [(b"etag", b'"1"')]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], set()),
        ([(b"connection", b"close")], {b"close"}),
        ([(b"connection", b"Keep-Alive, Upgrade")], {b"keep-alive", b"upgrade"}),
        ([(b"connection", b" , a ,b,, ")], {b"a", b"b"}),
        ([(b"connection", b"a"), (b"x", b"b"), (b"connection", b"c")], {b"a", b"c"}),
        ([(b"x-connection", b"a")], set()),
    ],
)
def test_connection_tokens_are_the_lower_cased_comma_list(headers: H, expected: set[bytes]) -> None:
    assert connection_tokens(headers) == expected


# --- upgrades ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"upgrade", b"websocket"), (b"connection", b"Upgrade")], True),
        ([(b"connection", b"keep-alive, Upgrade"), (b"upgrade", b"WebSocket")], True),
        ([(b"upgrade", b"websocket")], False),
        ([(b"connection", b"upgrade")], False),
        ([(b"upgrade", b"h2c"), (b"connection", b"Upgrade")], False),
        ([(b"upgrade", b"websocket"), (b"connection", b"keep-alive")], False),
        ([], False),
    ],
)
def test_websocket_upgrade_needs_both_upgrade_and_connection_upgrade(
    headers: H, expected: bool
) -> None:
    assert is_websocket_upgrade(headers) is expected


# --- trusted peers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", ()),
        (" , ", ()),
        ("10.0.0.0/8", ("10.0.0.0/8",)),
        ("10.1.2.3/8", ("10.0.0.0/8",)),  # host bits allowed, not strict
        (" 192.168.1.1 , ::1 ", ("192.168.1.1/32", "::1/128")),
        ("10.0.0.0/8,fd00::/8", ("10.0.0.0/8", "fd00::/8")),
    ],
)
def test_trusted_proxies_parse_as_a_comma_list_of_networks(
    spec: str, expected: tuple[str, ...]
) -> None:
    assert tuple(str(n) for n in parse_trusted(spec)) == expected


@pytest.mark.parametrize("spec", ["not-a-net", "10.0.0.0/33", "10.0.0.0/8,,bogus"])
def test_a_bad_trusted_proxies_entry_is_a_configuration_error(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_trusted(spec)


@pytest.mark.parametrize(
    ("peer", "trusted", "expected"),
    [
        ("10.1.2.3", TRUSTED, True),
        ("10.255.255.255", TRUSTED, True),
        ("11.0.0.1", TRUSTED, False),
        ("::1", TRUSTED, True),
        ("::2", TRUSTED, False),
        ("::ffff:10.1.2.3", TRUSTED, False),  # a v4-mapped peer is not in a v4 network
        ("not-an-ip", TRUSTED, False),
        ("", TRUSTED, False),
        ("10.1.2.3", (), False),
    ],
)
def test_only_peers_inside_a_trusted_network_are_trusted(
    peer: str, trusted: tuple[Network, ...], expected: bool
) -> None:
    assert is_trusted(peer, trusted) is expected


# --- request IDs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [b"abc", b"A.b_c:d-9", b"x" * 128, b"0", b"550e8400-e29b-41d4-a716-446655440000"],
)
def test_a_valid_client_request_id_is_kept(given: bytes) -> None:
    assert request_id([(b"x-request-id", given)]) == given


@pytest.mark.parametrize(
    "given",
    [b"", b"x" * 129, b"has space", b"a\r\nx-evil: 1", b"semi;colon", b"caf\xc3\xa9", b"a/b"],
)
def test_an_invalid_client_request_id_is_replaced_by_a_minted_one(given: bytes) -> None:
    minted = request_id([(b"x-request-id", given)])
    assert minted != given and MINTED_RE.match(minted)


def test_a_missing_request_id_is_minted_and_every_mint_is_distinct() -> None:
    ids = {request_id([]) for _ in range(50)}
    assert len(ids) == 50 and all(MINTED_RE.match(i) for i in ids)


# --- upstream request headers -----------------------------------------------------------

CLIENT_FORWARDED: H = [
    (b"host", b"preview.example.com"),
    (b"x-forwarded-for", b"198.51.100.1"),
    (b"x-forwarded-proto", b"https"),
    (b"x-forwarded-host", b"public.example.com"),
    (b"accept", b"*/*"),
]


@pytest.mark.parametrize(
    ("peer", "trusted", "xff", "proto", "host"),
    [
        # untrusted: the client's X-Forwarded-* are forged until proven otherwise
        ("203.0.113.7", False, b"203.0.113.7", b"http", b"preview.example.com"),
        # trusted: kept, and this peer appended to the chain
        ("10.0.0.2", True, b"198.51.100.1, 10.0.0.2", b"https", b"public.example.com"),
    ],
)
def test_forwarded_headers_are_kept_from_the_client_only_when_the_peer_is_trusted(
    peer: str, trusted: bool, xff: bytes, proto: bytes, host: bytes
) -> None:
    out = upstream(CLIENT_FORWARDED, peer=peer, trusted=trusted)
    assert values(out, b"x-forwarded-for") == [xff]
    assert values(out, b"x-forwarded-proto") == [proto]
    assert values(out, b"x-forwarded-host") == [host]
    assert values(out, b"host") == [b"preview.example.com"]
    assert values(out, b"accept") == [b"*/*"]


def test_a_trusted_peer_without_forwarded_headers_gets_its_own_address_and_defaults() -> None:
    out = upstream([(b"host", b"h.example")], peer="10.0.0.2", trusted=True)
    assert values(out, b"x-forwarded-for") == [b"10.0.0.2"]
    assert values(out, b"x-forwarded-proto") == [b"http"]
    assert values(out, b"x-forwarded-host") == [b"h.example"]


def test_no_host_means_no_forwarded_host() -> None:
    out = upstream([(b"accept", b"*/*")])
    assert values(out, b"x-forwarded-host") == []


def test_several_forwarded_for_headers_from_a_trusted_peer_are_all_kept() -> None:
    out = upstream(
        [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-for", b"10.0.0.9")],
        peer="10.0.0.2",
        trusted=True,
    )
    assert values(out, b"x-forwarded-for") == [b"198.51.100.1, 10.0.0.9, 10.0.0.2"]


def test_the_request_id_sent_upstream_is_exactly_the_one_given() -> None:
    out = upstream([(b"x-request-id", b"client-chosen")], request_id=b"ours")
    assert values(out, b"x-request-id") == [b"ours"]


@pytest.mark.parametrize(
    ("content_length", "chunked", "expected"),
    [
        (12, False, [(b"content-length", b"12")]),
        (0, False, [(b"content-length", b"0")]),
        (None, True, [(b"transfer-encoding", b"chunked")]),
        (12, True, [(b"transfer-encoding", b"chunked")]),  # chunked wins, never both
        (None, False, []),
    ],
)
def test_framing_headers_are_re_added_from_the_given_length_never_copied(
    content_length: int | None, chunked: bool, expected: H
) -> None:
    client = [(b"content-length", b"99"), (b"transfer-encoding", b"gzip, chunked")]
    out = upstream(client, content_length=content_length, chunked=chunked)
    framing = [(k, v) for k, v in out if k in (b"content-length", b"transfer-encoding")]
    assert framing == expected


UPGRADE_REQUEST: H = [
    (b"host", b"h"),
    (b"connection", b"Upgrade"),
    (b"upgrade", b"websocket"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
]


def test_upgrade_headers_reach_the_upstream_for_an_upgrade() -> None:
    out = upstream(UPGRADE_REQUEST, upgrade=True)
    assert values(out, b"connection") == [b"Upgrade"]
    assert values(out, b"upgrade") == [b"websocket"]
    assert values(out, b"sec-websocket-key") == [b"dGhlIHNhbXBsZSBub25jZQ=="]


def test_upgrade_headers_are_dropped_when_the_request_is_not_an_upgrade() -> None:
    out = upstream(UPGRADE_REQUEST, upgrade=False)
    assert b"connection" not in names(out) and b"upgrade" not in names(out)


def test_hop_by_hop_and_connection_named_headers_never_reach_the_upstream() -> None:
    client = [
        (b"host", b"h"),
        (b"connection", b"keep-alive, x-hop"),
        (b"x-hop", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"te", b"trailers"),
        (b"proxy-authorization", b"Basic Zm9vOmJhcg=="),
        (b"expect", b"100-continue"),
        (b"x-app", b"1"),
    ]
    out = upstream(client)
    assert names(out) == [
        b"host",
        b"x-app",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-request-id",
    ]


# --- downstream response headers --------------------------------------------------------


def test_response_headers_lose_hop_by_hop_stripped_names_and_the_upstream_request_id() -> None:
    upstream_answer = [
        (b"content-type", b"text/html"),
        (b"connection", b"keep-alive, x-internal"),
        (b"x-internal", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"transfer-encoding", b"chunked"),
        (b"x-request-id", b"vite-made-this-up"),
        (b"x-preview-node-load", b"running=1/2; sessions=1/2"),
        (b"set-cookie", b"a=1"),
    ]
    out = downstream_response_headers(
        upstream_answer,
        request_id=b"ours",
        content_length=42,
        chunked=False,
        strip=frozenset({b"x-preview-node-load"}),
    )
    assert out == [
        (b"content-type", b"text/html"),
        (b"set-cookie", b"a=1"),
        (b"x-request-id", b"ours"),
        (b"content-length", b"42"),
    ]


def test_a_chunked_response_is_re_framed_as_chunked_only() -> None:
    out = downstream_response_headers(
        [(b"content-length", b"10")], request_id=b"r", content_length=None, chunked=True
    )
    assert out == [(b"x-request-id", b"r"), (b"transfer-encoding", b"chunked")]

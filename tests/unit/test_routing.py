"""route(): request target -> decision, including path tricks (pure)."""

from __future__ import annotations

import pytest

from previewcore.decisions import Local, Redirect, Reject
from previewcore.errors import UnknownSession
from previewcore.session_id import mint, parse_secrets
from proxycore.errors import BadRequest, NotFound, OverCapacity
from router.ring import Ring, parse_ring
from router.routing import Create, Forward, route

KEYS = parse_secrets("k" * 40)
RING = parse_ring(
    '[[nodes]]\nname = "node-0"\nurl = "http://127.0.0.1:9000"\n'
    '[[nodes]]\nname = "node-1"\nurl = "http://127.0.0.1:9001"\nstate = "draining"\n'
)
SID0 = mint("node-0", KEYS)
SID1 = mint("node-1", KEYS)
GONE = mint("node-9", KEYS)  # valid MAC, node absent from the ring
FORGED = SID0[:-1] + ("a" if SID0[-1] != "a" else "b")


def r(target: str, method: str = "GET", referer: str | None = None, ring: Ring = RING):
    return route(method, target, referer, ring, KEYS)


def test_encoded_id_goes_to_its_node_only() -> None:
    d = r(f"/preview/{SID0}/src/App.jsx?t=1")
    assert isinstance(d, Forward) and d.encoded and [n.name for n in d.nodes] == ["node-0"]


def test_draining_node_still_routes_its_sessions() -> None:
    d = r(f"/preview/{SID1}/")
    assert isinstance(d, Forward) and d.nodes[0].name == "node-1"


@pytest.mark.parametrize("sid", [FORGED, GONE, "node-0--short", "x--" + "a" * 39])
def test_forged_or_unknown_encoded_ids_are_rejected_404(sid: str) -> None:
    for target in (f"/preview/{sid}/", f"/kontext/preview/{sid}", f"/preview/{sid}"):
        d = r(target)
        assert isinstance(d, Reject) and isinstance(d.error, UnknownSession), target


def test_hashed_id_routes_to_owner_then_successors() -> None:
    d = r("/preview/my-project_1/")
    assert isinstance(d, Forward) and not d.encoded
    assert len(d.nodes) == 2 and d.nodes == tuple(RING.route("my-project_1"))


def test_malformed_hashed_id_is_400() -> None:
    d = r("/preview/" + "a" * 65 + "/")
    assert isinstance(d, Reject) and isinstance(d.error, BadRequest)


def test_bare_preview_path_redirects_with_query() -> None:
    d = r(f"/preview/{SID0}?x=1")
    assert d == Redirect(308, f"/preview/{SID0}/?x=1")


@pytest.mark.parametrize(
    "target",
    [
        f"/preview/{SID0}/../../kontext/preview",
        f"/preview/{SID0}/%2e%2e/%2e%2e/kontext/preview",
        f"/preview/{SID0}/..%2fkontext",
        f"/preview/{SID0}/a%5c..%5cb",
        f"/preview/{SID0}/./x",
        f"/preview/{SID0}/a\\b",
        f"/preview/{SID0}/%00",
        "/kontext/preview/../preview",
        "*",
    ],
)
def test_path_tricks_are_400_not_rerouted(target: str) -> None:
    d = r(target)
    assert isinstance(d, Reject) and isinstance(d.error, BadRequest)


def test_absolute_form_uses_only_the_path() -> None:
    d = r(f"http://evil.example:9999/preview/{SID0}/")
    assert isinstance(d, Forward) and d.nodes[0].port == 9000


def test_api_routes() -> None:
    assert isinstance(r("/kontext/preview", "POST"), Create)
    assert isinstance(r(f"/kontext/preview/{SID0}/files", "PUT"), Forward)
    assert isinstance(r(f"/kontext/preview/{SID0}/events", "GET"), Forward)
    d = r(f"/kontext/preview/{SID0}", "DELETE")
    assert isinstance(d, Forward) and d.route_class == "api"
    for target, method in (
        ("/kontext/preview", "GET"),
        (f"/kontext/preview/{SID0}/x", "GET"),
        ("/kontext/x", "GET"),
    ):
        d = r(target, method)
        assert isinstance(d, Reject) and isinstance(d.error, NotFound)


def test_local_paths_win_over_referer() -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert r(path, referer=f"http://h/preview/{SID0}/") == Local(path)
    d = r("/kontext/preview", "POST", referer=f"http://h/preview/{SID0}/")
    assert isinstance(d, Create)


def test_root_absolute_urls_from_a_preview_page_are_redirected_into_it() -> None:
    d = r("/data.json?v=2", referer=f"https://preview.example.com/preview/{SID0}/index.html")
    assert d == Redirect(307, f"/preview/{SID0}/data.json?v=2")


def test_unknown_path_without_referer_is_404() -> None:
    d = r("/favicon.ico")
    assert isinstance(d, Reject) and isinstance(d.error, NotFound)


def test_empty_ring_is_503_for_hashed_ids() -> None:
    d = r("/preview/abc/", ring=Ring([]))
    assert isinstance(d, Reject) and isinstance(d.error, OverCapacity)

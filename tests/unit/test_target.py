"""proxycore.target.split_target: what is routed is exactly what is forwarded (pure)."""

from __future__ import annotations

import pytest

from proxycore.errors import BadRequest
from proxycore.target import Target, split_target


@pytest.mark.parametrize(
    ("raw", "path", "query"),
    [
        ("/", "/", ""),
        ("/preview/abc/src/App.jsx", "/preview/abc/src/App.jsx", ""),
        ("/preview/abc/src/App.jsx?t=1&import", "/preview/abc/src/App.jsx", "t=1&import"),
        ("/a?", "/a", ""),
        ("/a?b?c", "/a", "b?c"),
        ("/a?x=../../etc", "/a", "x=../../etc"),  # the query is not a path
        ("/a?x=%2e%2e%2f", "/a", "x=%2e%2e%2f"),
        ("/a%20b/%41.js", "/a%20b/%41.js", ""),  # harmless escapes stay as they are
        ("/a/.../b", "/a/.../b", ""),  # '...' is a name, not a dot segment
        ("/a/..b/c.", "/a/..b/c.", ""),
        ("/preview/abc/", "/preview/abc/", ""),
        # absolute-form: reduced to its path; the authority never decides the route
        ("http://evil.example/preview/x/?q=1", "/preview/x/", "q=1"),
        ("https://evil.example:8443/a", "/a", ""),
        ("http://user:pw@evil.example/a", "/a", ""),
        ("http://evil.example", "/", ""),
        ("http://evil.example?q", "/", "q"),
    ],
)
def test_origin_and_absolute_form_targets_are_split_into_path_and_query(
    raw: str, path: str, query: str
) -> None:
    assert split_target(raw) == Target(path, query)


@pytest.mark.parametrize(("query", "suffix"), [("", ""), ("a=1", "?a=1"), ("a=1&b", "?a=1&b")])
def test_the_suffix_re_adds_the_question_mark_only_for_a_query(query: str, suffix: str) -> None:
    assert Target("/", query).suffix == suffix


@pytest.mark.parametrize(
    "raw",
    [
        # dot segments
        "/..",
        "/.",
        "/a/..",
        "/a/../b",
        "/a/./b",
        "/preview/x/../../kontext/preview",
        "http://h/a/../b",
        # percent-encoded '.', '/', '\'
        "/%2e%2e/x",
        "/%2E%2E/x",
        "/.%2e/x",
        "/a/%2e/b",
        "/a%2fb",
        "/a%2Fb",
        "/a%5cb",
        "/a%5Cb",
        "http://h/a%2fb",
        # raw and encoded control characters, '\', space
        "/a\\b",
        "/a\\..\\b",
        "/a\x00b",
        "/a\tb",
        "/a\rb",
        "/a\nb",
        "/a b",
        "/a\x7fb",
        "/a%00b",
        "/a%0d%0ab",
        "/a%0Ab",
        "/a%1fb",
        "/a%7Fb",
        # CR, LF, NUL in the query
        "/a?x\r\nSet-Cookie: y",
        "/a?x\nb",
        "/a?x\x00",
        # not origin-form or absolute-form
        "example.com:443",
        "*",
        "",
        "a/b",
        "preview/x/",
        "ftp://h/a",
    ],
)
def test_ambiguous_or_non_path_targets_are_refused_400(raw: str) -> None:
    with pytest.raises(BadRequest) as info:
        split_target(raw)
    assert info.value.status == 400 and info.value.code == "bad_request"

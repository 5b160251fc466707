"""What a headless check may be asked to load (pure)."""

from __future__ import annotations

import pytest

from previewcore.errors import InvalidContent
from previewnode.api import CheckBody, check_path


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/", ""), ("/about", "about"), ("/a/b?x=1#y", "a/b?x=1#y"), ("/a/..b", "a/..b")],
)
def test_app_paths_become_paths_under_the_base(path: str, expected: str) -> None:
    assert check_path(CheckBody(path=path)) == expected


@pytest.mark.parametrize(
    "body",
    [
        CheckBody(path="about"),
        CheckBody(path="/../kontext/preview"),
        CheckBody(path="/a/../../x"),
        CheckBody(path="//evil.example/"),
        CheckBody(path="/a\r\nHost: x"),
        CheckBody(path="/" + "a" * 2000),
        CheckBody(waitMs=-1),
        CheckBody(waitMs=10_001),
    ],
)
def test_anything_else_is_422(body: CheckBody) -> None:
    with pytest.raises(InvalidContent):
        check_path(body)

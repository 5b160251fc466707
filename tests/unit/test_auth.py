"""previewcore.auth: the API token file and the bearer check (CONTRACT §2)."""

from __future__ import annotations

import pytest

from previewcore.auth import authorize, check_token, parse_tokens
from previewcore.errors import Unauthorized

TOKENS = (b"tok-one", b"tok-two")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tok-one", (b"tok-one",)),
        ("tok-one\ntok-two\n", (b"tok-one", b"tok-two")),
        ("  tok-one  \r\n\ttok-two\t", (b"tok-one", b"tok-two")),
        ("# api tokens\n\ntok-one\n\n   \n# old: tok-zero\ntok-two", (b"tok-one", b"tok-two")),
        ("  # x\ntok-one", (b"tok-one",)),  # a comment after stripping
        ("tok#one", (b"tok#one",)),  # '#' only starts a comment at the line's start
    ],
)
def test_tokens_are_the_stripped_lines_that_are_not_blank_or_comments(
    text: str, expected: tuple[bytes, ...]
) -> None:
    assert parse_tokens(text) == expected


@pytest.mark.parametrize("text", ["", "\n\n", "   \n\t\n", "# only a comment\n", "  # x\n# y"])
def test_a_token_file_without_a_token_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"^/etc/preview/tokens: no API token in file$"):
        parse_tokens(text, "/etc/preview/tokens")


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (b"Bearer tok-one", True),
        (b"Bearer tok-two", True),
        (b"bearer tok-one", True),
        (b"BEARER tok-one", True),
        (b"BeArEr tok-two", True),
        (b"Bearer  tok-one ", True),  # surrounding space around the token is ignored
        (None, False),
        (b"", False),
        (b"Bearer", False),
        (b"Bearer ", False),
        (b"Bearer wrong", False),
        (b"Bearer TOK-ONE", False),  # the token itself is case-sensitive
        (b"Bearer tok-on", False),
        (b"Bearer tok-one-and-more", False),
        (b"Bearer tok-one tok-two", False),
        (b"tok-one", False),
        (b"Basic tok-one", False),
        (b"Bearertok-one", False),
        (b"Token tok-one", False),
    ],
)
def test_only_a_bearer_header_with_a_configured_token_passes(
    authorization: bytes | None, expected: bool
) -> None:
    assert check_token(authorization, TOKENS) is expected


def test_no_configured_token_lets_nothing_through() -> None:
    assert check_token(b"Bearer ", ()) is False
    assert check_token(b"Bearer anything", ()) is False


@pytest.mark.parametrize("authorization", [None, b"", b"Bearer wrong", b"Basic x"])
def test_authorize_without_a_token_file_lets_every_request_through(
    authorization: bytes | None,
) -> None:
    authorize(authorization, None)  # raises Unauthorized if it checked


@pytest.mark.parametrize("authorization", [None, b"", b"Bearer wrong", b"tok-one", b"Basic x"])
def test_authorize_answers_401_for_a_missing_or_wrong_token(authorization: bytes | None) -> None:
    with pytest.raises(Unauthorized) as info:
        authorize(authorization, TOKENS)
    assert info.value.status == 401 and info.value.code == "unauthorized"


def test_authorize_accepts_a_configured_token() -> None:
    authorize(b"bearer tok-two", TOKENS)  # raises Unauthorized if refused

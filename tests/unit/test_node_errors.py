"""previewnode.errors: errors only a node answers with (CONTRACT §2-§4)."""

from __future__ import annotations

import json

import pytest

from previewcore.errors import UnknownSession
from previewnode.errors import Draining, NotHeldHere, SessionFailed, SessionGone, Starting
from proxycore.errors import PreviewError, error_response


@pytest.mark.parametrize(
    ("cls", "status", "code", "retry_after"),
    [
        (NotHeldHere, 404, "unknown_session", None),
        (SessionGone, 410, "session_gone", None),
        (Draining, 503, "draining", 2),
        (Starting, 503, "starting", 2),
        # not in the contract's table: the node's own code for a session whose
        # dependencies or dev server failed (see the report)
        (SessionFailed, 502, "session_failed", None),
    ],
)
def test_node_errors_carry_the_contract_status_and_code(
    cls: type[PreviewError], status: int, code: str, retry_after: int | None
) -> None:
    err = cls()
    assert (err.status, err.code, err.retry_after) == (status, code, retry_after)
    answer_status, _, body = error_response(err)
    assert answer_status == status and json.loads(body)["code"] == code


@pytest.mark.parametrize("cls", [Draining, Starting])
def test_a_node_503_says_when_to_retry(cls: type[PreviewError]) -> None:
    _, headers, _ = error_response(cls())
    assert (b"retry-after", b"2") in headers


def test_not_held_here_is_an_unknown_session_marked_for_the_router() -> None:
    err = NotHeldHere()
    assert isinstance(err, UnknownSession)
    assert err.headers == ((b"x-preview-unknown-session", b"1"),)
    _, headers, _ = error_response(err)
    assert [v for k, v in headers if k == b"x-preview-unknown-session"] == [b"1"]


@pytest.mark.parametrize("cls", [UnknownSession, SessionGone, Draining, Starting, SessionFailed])
def test_no_other_error_carries_the_unknown_session_marker(cls: type[PreviewError]) -> None:
    _, headers, _ = error_response(cls())
    assert b"x-preview-unknown-session" not in [k for k, _ in headers]

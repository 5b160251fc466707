"""previewcore.errors: the API errors router and node both answer with (CONTRACT §2)."""

from __future__ import annotations

import json

import pytest

from previewcore.errors import InvalidContent, SessionExists, Unauthorized, UnknownSession
from proxycore.errors import PreviewError, error_response


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (Unauthorized, 401, "unauthorized"),
        (UnknownSession, 404, "unknown_session"),
        (SessionExists, 409, "session_exists"),
        (InvalidContent, 422, "invalid_content"),
    ],
)
def test_api_errors_carry_the_contract_status_and_code(
    cls: type[PreviewError], status: int, code: str
) -> None:
    err = cls()
    assert (err.status, err.code, err.retry_after, err.headers) == (status, code, None, ())
    answer_status, _, body = error_response(err)
    assert answer_status == status
    assert json.loads(body) == {"success": False, "error": cls.default_message, "code": code}

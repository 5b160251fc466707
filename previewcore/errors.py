"""Errors of the preview API that router and node both answer with (CONTRACT §2)."""

from __future__ import annotations

from proxycore.errors import PreviewError


class Unauthorized(PreviewError):
    status, code, default_message = 401, "unauthorized", "API token missing or wrong"


class UnknownSession(PreviewError):
    status, code, default_message = 404, "unknown_session", "unknown session"


class SessionExists(PreviewError):
    status, code, default_message = 409, "session_exists", "session ID already taken"


class InvalidContent(PreviewError):
    status, code, default_message = 422, "invalid_content", "invalid content"

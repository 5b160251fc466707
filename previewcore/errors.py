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


class ForbiddenOrigin(PreviewError):
    status, code, default_message = 403, "forbidden_origin", "this origin may not call the API"


class InsufficientStorage(PreviewError):
    """The node's disk is below its watermark (`--min-free-bytes`): refused before
    anything is written, so a full disk never leaves half a session behind."""

    status = 507
    code = "insufficient_storage"
    default_message = "this node is low on disk space"


class UnsupportedMediaType(PreviewError):
    status = 415
    code = "unsupported_media_type"
    default_message = "API bodies must be application/json"

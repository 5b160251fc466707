"""Errors only a node answers with: session state it alone knows (CONTRACT §2-§4)."""

from __future__ import annotations

from previewcore.errors import UnknownSession
from previewcore.wire import UNKNOWN_MARK
from proxycore.errors import PreviewError


class NotHeldHere(UnknownSession):
    """A hashed ID this node does not hold: the router may ask the next node (CONTRACT §4)."""

    headers = ((UNKNOWN_MARK, b"1"),)


class SessionFailed(PreviewError):
    """The session's dependencies could not be installed or its dev server cannot start."""

    status, code, default_message = 502, "session_failed", "the preview failed to start"


class SessionGone(PreviewError):
    status, code, default_message = 410, "session_gone", "session expired or deleted"


class Draining(PreviewError):
    status, code, default_message = 503, "draining", "shutting down, retry shortly"
    retry_after = 2


class Starting(PreviewError):
    status, code, default_message = 503, "starting", "the preview is still starting"
    retry_after = 2

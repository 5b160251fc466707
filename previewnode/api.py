"""The `/kontext/preview` API of a node: bodies, validation, and the session object.

Bodies are decoded with msgspec into typed structs; every file path, size and
dependency spec is checked before anything touches the disk, so a rejected
request leaves nothing behind (CONTRACT §2, §6).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from previewcore.errors import InvalidContent
from previewnode.config import NodeConfig
from previewnode.deps import requested
from previewnode.sessions import Session, rfc3339
from previewnode.workspace import Limits, decode_content, is_ignored, validate_files


class FileEntry(msgspec.Struct, forbid_unknown_fields=True):
    path: str
    content: str
    encoding: str = "utf-8"


Files = list[FileEntry] | dict[str, str]


class CreateBody(msgspec.Struct, forbid_unknown_fields=True):
    files: Files = msgspec.field(default_factory=list)
    packageJson: dict[str, Any] | None = None  # contract field names
    sessionId: str | None = None
    affinityKey: str | None = None
    ttlSeconds: float | None = None
    access: Literal["public", "private"] | None = None


class UpdateBody(msgspec.Struct, forbid_unknown_fields=True):
    files: Files = msgspec.field(default_factory=list)
    delete: list[str] = msgspec.field(default_factory=list)
    packageJson: dict[str, Any] | None = None


class PatchBody(msgspec.Struct, forbid_unknown_fields=True):
    ttlSeconds: float


class TokenBody(msgspec.Struct, forbid_unknown_fields=True):
    ttlSeconds: float = 3600.0


class CheckBody(msgspec.Struct, forbid_unknown_fields=True):
    path: str = "/"  # the app's route to load
    waitMs: int = 1000  # after the page's load event, for late errors


def check_path(body: CheckBody) -> str:
    """The route a check loads, as a path relative to the preview's base; 422 otherwise."""
    path = body.path
    if not path.startswith("/") or len(path) > 2000 or any(c in path for c in "\r\n\t\\"):
        raise InvalidContent("path must be an absolute path of the app, like /about")
    if ".." in path.split("?")[0].split("/") or "//" in path.split("?")[0]:
        raise InvalidContent("path must not climb out of the app")
    if not 0 <= body.waitMs <= 10_000:
        raise InvalidContent("waitMs must be in [0, 10000]")
    return path.lstrip("/")


@dataclass(frozen=True)
class Upload:
    """A validated set of files (path -> bytes), the deletions, and what they imply."""

    files: dict[str, bytes]
    deletes: list[str]
    deps: dict[str, str] | None  # its non-tooling dependencies, validated
    ignored: list[str]


def _file_map(files: Files) -> dict[str, bytes]:
    if isinstance(files, dict):
        return {path: decode_content(path, content, "utf-8") for path, content in files.items()}
    out: dict[str, bytes] = {}
    for entry in files:
        if entry.path in out:
            raise InvalidContent(f"{entry.path}: given twice")
        out[entry.path] = decode_content(entry.path, entry.content, entry.encoding)
    return out


def make_upload(
    files: Files,
    package_json: Mapping[str, Any] | None,
    deletes: list[str],
    limits: Limits,
    *,
    own_tooling: bool = False,
) -> Upload:
    mapping = _file_map(files)
    if package_json is not None:
        mapping["package.json"] = msgspec.json.format(msgspec.json.encode(package_json), indent=2)
    validate_files(mapping, deletes, limits)
    parsed: dict[str, Any] | None = None
    if "package.json" in mapping:
        try:
            doc = msgspec.json.decode(mapping["package.json"])
        except msgspec.DecodeError as exc:
            raise InvalidContent(f"package.json is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise InvalidContent("package.json must be a JSON object")
        parsed = doc
    deps = requested(parsed, own_tooling=own_tooling) if parsed is not None else None
    ignored = sorted(p for p in mapping if is_ignored(p))
    return Upload(mapping, deletes, deps, ignored)


def session_object(s: Session, cfg: NodeConfig) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "success": True,
        "sessionId": s.id,
        "node": s.record.node,
        "status": s.status,
        "previewUrl": cfg.preview_url(s.id),
        "wsUrl": cfg.ws_url(s.id),
        "createdAt": rfc3339(s.record.created_at),
        "expiresAt": rfc3339(s.record.expires_at),
        "errors": [e.as_json() for e in s.errors],
        "runtimeErrors": s.runtime_json(),
        "access": s.record.access,
        "ignored": list(s.record.ignored),
    }
    if s.status == "failed" and s.record.error:
        obj["error"] = s.record.error
    return obj


def files_object(files: Mapping[str, bytes]) -> dict[str, Any]:
    """Workspace files in the upload's `files` shape (utf-8 where possible, else base64)."""
    out = []
    for path in sorted(files):
        data = files[path]
        try:
            out.append({"path": path, "content": data.decode("utf-8"), "encoding": "utf-8"})
        except UnicodeDecodeError:
            out.append(
                {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}
            )
    return {"success": True, "files": out}


def ttl(requested_seconds: float | None, cfg: NodeConfig) -> float:
    if requested_seconds is not None and requested_seconds <= 0:
        raise InvalidContent("ttlSeconds must be positive")
    return min(requested_seconds or cfg.default_ttl, cfg.max_ttl)

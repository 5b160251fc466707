"""Human-readable lines for a session object (CONTRACT §2 shape); pure string building."""

from __future__ import annotations

from typing import Any


def error_lines(session: dict[str, Any]) -> list[str]:
    """The session's current build errors as `file:line:column: message` lines."""
    errors = session.get("errors") or []
    if not errors:
        return ["build errors: none"]
    lines = [f"build errors: {len(errors)}"]
    for e in errors:
        if not isinstance(e, dict):
            continue
        where = f"{e.get('file', '?')}:{e.get('line', 0)}:{e.get('column', 0)}"
        message = str(e.get("message", "")).strip()
        first, *rest = message.splitlines() or [""]
        lines.append(f"  {where}: {first}")
        lines.extend(f"    {r}" for r in rest)
    return lines


def runtime_lines(runtime: list[Any]) -> list[str]:
    """What browsers reported, as `file:line:column: message (xN)` lines."""
    if not runtime:
        return ["runtime errors: none"]
    lines = [f"runtime errors: {len(runtime)}"]
    for e in runtime:
        if not isinstance(e, dict):
            continue
        where = f"{e.get('file') or '?'}:{e.get('line', 0)}:{e.get('column', 0)}"
        count = e.get("count", 1)
        first = str(e.get("message", "")).strip().splitlines() or [""]
        times = f" (x{count})" if isinstance(count, int) and count > 1 else ""
        lines.append(f"  {where}: [{e.get('kind', 'error')}] {first[0]}{times}")
    return lines


def event_lines(kind: str, data: Any) -> list[str]:
    """What `preview up --watch` prints for one event of the session's stream."""
    if not isinstance(data, dict):
        return []
    if kind == "errors":
        return error_lines(data)
    if kind == "runtimeErrors":
        return runtime_lines(data.get("runtimeErrors") or [])
    if kind == "status":
        error = f" ({data['error']})" if data.get("error") else ""
        return [f"status: {data.get('status', '?')}{error}"]
    if kind == "install":
        return [f"install: {data.get('phase', '?')}"]
    if kind == "ended":
        return ["the session ended"]
    return []


def summary_lines(session: dict[str, Any], uploaded: int | None = None) -> list[str]:
    status = session.get("status", "?")
    lines = [
        f"preview: {session.get('previewUrl', '?')}",
        f"session: {session.get('sessionId', '?')} on {session.get('node', '?')}",
        f"status:  {status}" + (f" ({uploaded} files uploaded)" if uploaded is not None else ""),
    ]
    if status in ("starting", "installing"):
        lines.append("         (the preview URL waits until the dev server is ready)")
    if session.get("error"):
        lines.append(f"error:   {session['error']}")
    if session.get("ignored"):
        lines.append("ignored: " + ", ".join(map(str, session["ignored"])) + " (stored, never run)")
    lines.extend(error_lines(session))
    return lines


def push_line(changed: list[str], deleted: list[str], session: dict[str, Any]) -> str:
    parts = []
    if changed:
        parts.append(f"{len(changed)} changed (" + ", ".join(changed[:5]) + _more(changed) + ")")
    if deleted:
        parts.append(f"{len(deleted)} deleted (" + ", ".join(deleted[:5]) + _more(deleted) + ")")
    return "pushed " + "; ".join(parts) + f" -> {session.get('status', '?')}"


def _more(paths: list[str]) -> str:
    return f", +{len(paths) - 5} more" if len(paths) > 5 else ""

"""Versions of the tools and the code a run measured, for its JSON `meta`."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path


def first_line(argv: list[str]) -> str:
    """The first line a command prints (stdout, then stderr); `?` if it cannot run."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (p.stdout + p.stderr).strip()
    return text.splitlines()[0] if text else "?"


def git_commit(repo: Path) -> str:
    return first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])


def git_dirty(repo: Path, path: str) -> str:
    """Whether `path` has uncommitted changes in `repo`, as the string the JSON keeps."""
    return str(bool(first_line(["git", "-C", str(repo), "status", "--porcelain", path]).strip("?")))


def platform_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "kernel": platform.release()}

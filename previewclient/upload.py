"""Collect a project folder into the API's `files` shape (CONTRACT §2).

`scan` only stats (cheap enough to run every half second for `--watch`); `entry` reads
one file. Text that is valid UTF-8 goes as `utf-8`, anything else as `base64`. The
limits mirror the node's defaults so that a too-big project is refused here, with a
message naming the file, before anything is sent. Symlinked folders are never
followed, and a symlinked file is only sent when it points inside the folder: an
upload must never carry a file from elsewhere on this machine.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from previewclient.ignore import IgnoreRules, parse_gitignore

MIB = 1024 * 1024


class UploadError(Exception):
    """The folder can't be uploaded as it is; the message says why and what to do."""


@dataclass(frozen=True)
class Limits:
    max_files: int = 5000
    max_file_bytes: int = 8 * MIB


@dataclass(frozen=True)
class Stamp:
    """What `--watch` compares between two scans."""

    mtime_ns: int
    size: int


def load_rules(root: Path, include_env: bool = False) -> IgnoreRules:
    try:
        text = (root / ".gitignore").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        text = ""
    return IgnoreRules(parse_gitignore(text), include_env)


def _size_text(n: int) -> str:
    return f"{n / MIB:.1f} MiB" if n >= MIB else f"{n} bytes"


def scan(root: Path, rules: IgnoreRules, limits: Limits = Limits()) -> dict[str, Stamp]:
    """Every file to upload (relative POSIX path -> stamp), sorted; UploadError past a limit."""
    real_root = os.path.realpath(root)
    found: dict[str, Stamp] = {}
    for folder, subfolders, names in os.walk(root):
        rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if rel_folder == "." else rel_folder + "/"
        subfolders[:] = sorted(d for d in subfolders if not rules.skips_folder(prefix + d))
        for name in sorted(names):
            rel = prefix + name
            if rules.skips_file(rel):
                continue
            path = os.path.join(folder, name)
            if os.path.islink(path) and not _inside(os.path.realpath(path), real_root):
                continue
            try:
                st = os.stat(path)
            except OSError:  # vanished, or a dangling link
                continue
            if not os.path.isfile(path):
                continue
            if st.st_size > limits.max_file_bytes:
                raise UploadError(
                    f"{rel} is {_size_text(st.st_size)}; at most "
                    f"{_size_text(limits.max_file_bytes)} per file (list it in .gitignore)"
                )
            found[rel] = Stamp(st.st_mtime_ns, st.st_size)
            if len(found) > limits.max_files:
                raise UploadError(
                    f"{root} has more than {limits.max_files} files to upload "
                    "(list generated folders in .gitignore)"
                )
    return found


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def encode(rel: str, data: bytes) -> dict[str, str]:
    try:
        return {"path": rel, "content": data.decode("utf-8"), "encoding": "utf-8"}
    except UnicodeDecodeError:
        content = base64.b64encode(data).decode("ascii")
        return {"path": rel, "content": content, "encoding": "base64"}


def entry(root: Path, rel: str) -> dict[str, str]:
    """One file in the `files` shape; OSError when it can't be read (e.g. just deleted)."""
    return encode(rel, (root / rel).read_bytes())


def collect(
    root: Path, rules: IgnoreRules, limits: Limits = Limits()
) -> tuple[dict[str, Stamp], list[dict[str, str]]]:
    """The scan (for a later `--watch`) and every file's entry, for a create request."""
    if not root.is_dir():
        raise UploadError(f"{root} is not a folder")
    stamps = scan(root, rules, limits)
    if not stamps:
        raise UploadError(f"{root} has no files to upload")
    files = []
    for rel in stamps:
        try:
            files.append(entry(root, rel))
        except OSError as exc:
            raise UploadError(f"cannot read {rel}: {exc.strerror or exc}") from exc
    return stamps, files

"""Uploaded files: validate paths and contents, then write them so nothing is half done.

Uploads are untrusted (CONTRACT §6). A path is a relative POSIX path inside the
workspace; anything that could escape it, shadow the dependency tree or run at
install time is refused *before* a byte is written. Files are only ever created
as regular files (never symlinks: Vite follows them out of the workspace).

A new session's files go to a staging directory that is renamed into place
after fsync; an update writes each file to a temp name and renames it, so
Vite's watcher sees whole files and pushes one HMR update per file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import os
import re
import shutil
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from previewcore.errors import InvalidContent
from proxycore.errors import TooLarge

MAX_DEPTH = 32
_REFUSED_FIRST = {"node_modules", ".git"}
_REFUSED_NAMES = {".npmrc", ".pnpmfile.cjs", ".yarnrc", ".yarnrc.yml"}
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")  # C0, DEL, C1, backslash
NAME_MAX = 255  # bytes of one path segment (Linux)
# Stored but never executed (CONTRACT §6): the node's fixed configuration wins.
_IGNORED_RE = re.compile(r"^(vite|postcss|tailwind)\.config\.[A-Za-z0-9]+$")


@dataclass(frozen=True)
class Limits:
    max_files: int = 5000  # per upload, and in the whole workspace after it
    max_file_bytes: int = 8 * 1024 * 1024
    max_workspace_bytes: int = 256 * 1024 * 1024  # the whole workspace after an upload


def check_path(path: str) -> str:
    """The path if it is a safe relative workspace path, else InvalidContent naming why."""
    if not path or len(path) > 1024:
        raise InvalidContent(f"bad file path {path[:80]!r}: empty or too long")
    if _CONTROL_RE.search(path):
        raise InvalidContent(f"bad file path {path[:80]!r}: control character or backslash")
    if path.startswith("/"):
        raise InvalidContent(f"bad file path {path[:80]!r}: absolute")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidContent(f"bad file path {path[:80]!r}: empty, '.' or '..' segment")
    if len(parts) > MAX_DEPTH:
        raise InvalidContent(f"bad file path {path[:80]!r}: deeper than {MAX_DEPTH}")
    if parts[0] in _REFUSED_FIRST or "node_modules" in parts:
        raise InvalidContent(f"bad file path {path[:80]!r}: node_modules and .git are managed")
    if any(p in _REFUSED_NAMES for p in parts):
        raise InvalidContent(f"bad file path {path[:80]!r}: reserved name")
    if any(len(p.encode("utf-8", "surrogatepass")) > NAME_MAX for p in parts):
        raise InvalidContent(f"bad file path {path[:80]!r}: a segment over {NAME_MAX} bytes")
    return path


def is_ignored(path: str) -> bool:
    return "/" not in path and bool(_IGNORED_RE.match(path))


def decode_content(path: str, content: str, encoding: str) -> bytes:
    if encoding in ("utf-8", "utf8"):
        return content.encode("utf-8")
    if encoding == "base64":
        try:
            return base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidContent(f"{path}: invalid base64") from exc
    raise InvalidContent(f"{path}: encoding must be utf-8 or base64")


def validate_files(files: Mapping[str, bytes], deletes: Iterable[str], limits: Limits) -> None:
    if len(files) > limits.max_files:
        raise TooLarge(f"{len(files)} files; at most {limits.max_files}")
    for path, data in files.items():
        check_path(path)
        if len(data) > limits.max_file_bytes:
            raise TooLarge(f"{path}: {len(data)} bytes; at most {limits.max_file_bytes}")
    for path in files:
        parent = path.rpartition("/")[0]
        while parent:
            if parent in files:
                raise InvalidContent(f"{path}: {parent} is a file in the same upload")
            parent = parent.rpartition("/")[0]
    for path in deletes:
        check_path(path)


def check_totals(
    sizes: Mapping[str, int], files: Mapping[str, bytes], deletes: Iterable[str], limits: Limits
) -> None:
    """413 unless the workspace after this upload stays within its totals.

    Per-request limits alone let a tenant grow a workspace without bound, one PUT at a
    time; this is checked before anything is written, so a refused upload stores nothing."""
    after = dict(sizes)
    for gone in deletes:
        for path in [p for p in after if p == gone or p.startswith(gone + "/")]:
            del after[path]
    after.update((path, len(data)) for path, data in files.items())
    if len(after) > limits.max_files:
        raise TooLarge(f"the workspace would hold {len(after)} files; at most {limits.max_files}")
    total = sum(after.values())
    if total > limits.max_workspace_bytes:
        raise TooLarge(
            f"the workspace would hold {total} bytes; at most {limits.max_workspace_bytes}"
        )


class TooDeep(OSError):
    """A tree whose paths pass the system's limit (PATH_MAX): only a dev server makes
    one, going down by relative paths."""


def walk_files(
    root: Path, skip: frozenset[str] = frozenset(), deep_ok: bool = True
) -> Iterator[tuple[Path, os.stat_result]]:
    """Each regular file under `root` with its lstat, never following links, skipping
    directories named in `skip`. Iterative: a tenant's dev server can make its workspace
    deeper than Python's recursion limit (os.walk recurses on 3.11: such a tree raised
    RecursionError in the node's sweep and ended the node). Parts too deep to name are
    passed over, or raise TooDeep unless `deep_ok`."""
    stack = [root]
    while stack:
        here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG and not deep_ok:
                raise TooDeep(exc.errno, "a path under it is too long", str(root)) from exc
            continue  # gone meanwhile, or not readable: as os.walk
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in skip:
                        stack.append(Path(entry.path))
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                if exc.errno == errno.ENAMETOOLONG and not deep_ok:
                    raise TooDeep(exc.errno, "a path under it is too long", str(root)) from exc
                continue
            if stat.S_ISREG(st.st_mode):
                yield Path(entry.path), st


def file_sizes(root: Path, skip: frozenset[str] = frozenset({"node_modules"})) -> dict[str, int]:
    """Every regular file under `root` and its size, never following links."""
    return {str(path.relative_to(root)): st.st_size for path, st in walk_files(root, skip)}


def tree_bytes(root: Path) -> int:
    """Bytes of the regular files under `root`, every directory counted (a `node_modules`
    too), never following symlinks; a tree too deep to name counts as unbounded."""
    try:
        return sum(st.st_size for _, st in walk_files(root, deep_ok=False))
    except TooDeep:
        return sys.maxsize


def disk_used(roots: Sequence[Path]) -> int:
    """`tree_bytes` of each of `roots` that is a real directory (a root may be missing)."""
    return sum(tree_bytes(root) for root in roots if root.is_dir() and not root.is_symlink())


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: Path) -> None:
    """`rm -rf path`, best effort, for trees a tenant's dev server may have shaped: no
    recursion, no path-length limit (one directory descriptor at a time, names relative
    to it), no link followed. shutil.rmtree recurses: a deep tree raised RecursionError,
    which `ignore_errors` does not cover."""
    try:
        fd = os.open(path, _DIR)
    except FileNotFoundError:
        return
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()  # a link or a file: the entry itself
        return
    names: list[str] = []  # the directories descended into, from `path` down
    pending = [_remove_files(fd)]  # each level's subdirectories not yet removed
    try:
        while pending:
            if pending[-1]:
                name = pending[-1].pop()
                try:
                    child = os.open(name, _DIR, dir_fd=fd)
                except OSError:
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=fd)
                    continue
                os.close(fd)
                fd = child
                names.append(name)
                pending.append(_remove_files(fd))
                continue
            pending.pop()
            if not names:
                break
            parent = os.open("..", _DIR, dir_fd=fd)
            os.close(fd)
            fd = parent
            with contextlib.suppress(OSError):
                os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _remove_files(fd: int) -> list[str]:
    """Unlink everything in the directory `fd` but directories; their names."""
    dirs = []
    with contextlib.suppress(OSError), os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                dirs.append(entry.name)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.name, dir_fd=fd)
    return dirs


def empty_dir(path: Path) -> None:
    """Remove what is inside `path`, keep `path` (a bind-mount target)."""
    if not path.is_dir() or path.is_symlink():
        return
    for child in path.iterdir():
        remove_tree(child)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    """Create a regular file (never following or creating a symlink) and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, data) if len(data) < (1 << 20) else _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _safe_parent(root: Path, rel: str, *, create: bool = True) -> Path:
    """The parent directory of `rel` under `root`, refusing any symlink or file on the way;
    missing directories are created (or, with `create=False`, only checked)."""
    parent = root
    for part in rel.split("/")[:-1]:
        parent = parent / part
        if parent.is_symlink():
            raise InvalidContent(f"{rel}: a parent is a symlink")
        if not parent.exists():
            if create:
                parent.mkdir(mode=0o755)
        elif not parent.is_dir():
            raise InvalidContent(f"{rel}: a parent is a file")
    return parent


def _check_target(root: Path, rel: str) -> None:
    target = root / rel
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise InvalidContent(f"{rel}: exists and is not a regular file")


def write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    """Write a fresh tree under `root` (which must not exist yet) and fsync it."""
    root.mkdir(parents=False, mode=0o755)
    dirs: set[Path] = {root}
    for rel, data in files.items():
        parent = _safe_parent(root, rel)
        dirs.add(parent)
        _write_new(root / rel, data)
    for d in dirs:
        _fsync_dir(d)


def _check_targets(root: Path, files: Iterable[str]) -> None:
    """Refuse an update that cannot be written whole, before anything is written."""
    for rel in files:
        _safe_parent(root, rel, create=False)
        _check_target(root, rel)


def room_for(incoming: int, free: int, min_free: int) -> bool:
    """Would writing `incoming` bytes keep at least `min_free` free? (0: no watermark)"""
    return min_free <= 0 or free - incoming >= min_free


def disk_refusal(data_dir: Path, incoming: int, min_free: int) -> str | None:
    """Why writing `incoming` more bytes under `data_dir` would go below the watermark
    `min_free` (CONTRACT's 507), or None when it would not."""
    if min_free <= 0:
        return None
    free = shutil.disk_usage(data_dir).free
    if room_for(incoming, free, min_free):
        return None
    return f"this node keeps {min_free} bytes of disk free and has {free}"


STYLESHEETS = (".css", ".scss", ".sass", ".less", ".styl", ".pcss", ".postcss")


def write_order(paths: Iterable[str]) -> list[str]:
    """Stylesheets first, then the rest, each in the upload's order.

    A changed source file makes Tailwind recompile its stylesheets; its plugin stats a
    stylesheet after reading it, so one replaced during that compile is taken for the
    old one until it changes again (stale CSS served without an error). Written first,
    no stylesheet of an update changes under a compile its other files started."""
    return sorted(paths, key=lambda p: not p.lower().endswith(STYLESHEETS))


def apply_update(root: Path, files: Mapping[str, bytes], deletes: Iterable[str]) -> None:
    """Write every new file beside its target first, then rename them all into place (in
    `write_order`), then delete others.

    Every target is checked first, so a refused update writes nothing; a write that fails
    (the disk filled up) removes what it wrote, so no update is ever half applied."""
    _check_targets(root, files)
    staged: list[tuple[Path, Path, Path]] = []  # (temp, target, parent)
    try:
        for rel in write_order(files):
            parent = _safe_parent(root, rel)
            _check_target(root, rel)  # again: a dev server writes this tree too
            target = root / rel
            tmp = parent / f".{target.name}.preview-tmp"
            if tmp.exists() or tmp.is_symlink():
                tmp.unlink()
            staged.append((tmp, target, parent))
            _write_new(tmp, files[rel])
    except BaseException:
        for tmp, _, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    for tmp, target, parent in staged:
        os.replace(tmp, target)
        _fsync_dir(parent)
    for rel in deletes:
        target = root / rel
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir() and rel != "":
            remove_tree(target)


def read_tree(root: Path, skip: frozenset[str] = frozenset({"node_modules"})) -> dict[str, bytes]:
    """Every regular file under `root` (for read-back), skipping managed folders."""
    out: dict[str, bytes] = {}
    for full, _ in walk_files(root, skip):
        if full.name.endswith(".preview-tmp"):
            continue
        with contextlib.suppress(OSError):  # replaced or gone meanwhile
            out[str(full.relative_to(root))] = _read_no_follow(full)
    return dict(sorted(out.items()))


def _read_no_follow(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with open(fd, "rb") as f:
        return f.read()

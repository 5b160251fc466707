"""A config file that is re-read when it changes (the ring, the secrets).

Kubernetes updates a mounted ConfigMap by swapping a `..data` symlink, so the
file's inode changes while its path stays: the poll compares (device, inode,
mtime, size) of the path as resolved *now*. A file that fails to parse leaves
the previous value in force; the failure is logged and counted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("preview.config")
Stamp = tuple[int, int, int, int]


def _stamp(path: Path) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class LiveFile(Generic[T]):
    """The latest good parse of `path`; `reload()` is cheap when nothing changed."""

    def __init__(
        self,
        path: Path,
        parse: Callable[[str, str], T],
        on_reload: Callable[[bool], None] | None = None,
    ) -> None:
        self.path = path
        self._parse = parse
        self._on_reload = on_reload
        self._stamp: Stamp | None = None
        self.value: T = self._load()  # the first load must succeed: fail fast at start-up

    def _load(self) -> T:
        stamp = _stamp(self.path)
        text = self.path.read_text(encoding="utf-8")
        value = self._parse(text, str(self.path))
        self._stamp = stamp
        return value

    def reload(self, force: bool = False) -> bool:
        """Re-read if the file changed (or `force`); True when a new value took effect."""
        if not force and _stamp(self.path) == self._stamp:
            return False
        try:
            value = self._load()
        except (OSError, ValueError) as exc:
            self._stamp = _stamp(self.path)  # don't re-log the same broken file every poll
            log.error("keeping the previous %s: %s", self.path, exc)
            if self._on_reload:
                self._on_reload(False)
            return False
        changed = value != self.value
        self.value = value
        if self._on_reload:
            self._on_reload(True)
        if changed:
            log.info("reloaded %s", self.path)
        return changed

"""`preview up --watch`: poll the folder and push what changed to the session.

Polling (an mtime/size scan every half second) needs no extra dependency and works on
every filesystem, network mounts included. A push sends the changed files whole and
lists removed ones in `delete` (CONTRACT §2 `PUT .../files`). The stamps only advance
once the node has taken a push, so a router that is briefly unreachable loses
nothing; a push the node rejects (413, 422) is reported and not retried until the
file changes again. A session that is gone (404/410) ends the watch with an error.
It never deletes the session: Ctrl-C only stops watching. Build and runtime errors are
printed as they arrive by previewclient.follow, from the session's event stream.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from previewclient.api import Api, ApiError, RouterUnreachable
from previewclient.report import push_line
from previewclient.upload import Limits, Stamp, UploadError, entry, load_rules, scan

INTERVAL = 0.5


@dataclass(frozen=True)
class Change:
    changed: list[str]
    deleted: list[str]

    def __bool__(self) -> bool:
        return bool(self.changed or self.deleted)


def diff(before: dict[str, Stamp], after: dict[str, Stamp]) -> Change:
    changed = sorted(p for p, s in after.items() if before.get(p) != s)
    deleted = sorted(p for p in before if p not in after)
    return Change(changed, deleted)


def _say(line: str) -> None:
    print(line, flush=True)


def _warn(line: str) -> None:
    print(f"preview: {line}", file=sys.stderr, flush=True)


@dataclass
class Watcher:
    api: Api
    session_id: str
    root: Path
    stamps: dict[str, Stamp]
    include_env: bool = False
    limits: Limits = field(default_factory=Limits)
    say: Callable[[str], None] = _say
    warn: Callable[[str], None] = _warn
    _last_warning: str | None = None

    def run(self) -> None:
        """Poll until interrupted (KeyboardInterrupt) or the session is gone (ApiError)."""
        while True:
            time.sleep(INTERVAL)
            self.poll()

    def _warn_once(self, line: str) -> None:
        if line != self._last_warning:
            self.warn(line)
        self._last_warning = line

    def poll(self) -> None:
        try:
            now = scan(self.root, load_rules(self.root, self.include_env), self.limits)
        except UploadError as exc:
            self._warn_once(f"not pushing: {exc}")
            return
        change = diff(self.stamps, now)
        if not change:
            return
        files = []
        for rel in change.changed:
            try:
                files.append(entry(self.root, rel))
            except OSError:  # removed since the scan: decide on the next one
                if rel in self.stamps:
                    now[rel] = self.stamps[rel]
                else:
                    del now[rel]
        changed = [f["path"] for f in files]
        if not changed and not change.deleted:
            return
        try:
            session = self.api.update(self.session_id, files, change.deleted)
        except RouterUnreachable as exc:
            self._warn_once(f"{exc} (will retry)")
            return
        except ApiError as exc:
            if exc.status in (404, 410):
                raise
            self.stamps = now  # the node took none of it; retried once the files change again
            self.warn(f"push rejected: {exc}")
            return
        self.stamps = now
        self._last_warning = None
        self.say(push_line(changed, change.deleted, session))

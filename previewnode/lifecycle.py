"""A session's status and every move between statuses, in one table (pure).

The status is what the API reports (CONTRACT §2: `starting|installing|ready|idle|
failed`) and what held requests wait on. It changes only through `next_status`, so
a move nobody planned (a crashed session reported `ready`, a failed install
silently `idle`) is an `IllegalMove` at the place that tried it, not a wrong answer
much later.

Never: set a status by assignment outside `Session.move`.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    STARTING = "starting"  # registered or booting: the dev server is being started
    INSTALLING = "installing"  # its dependency set is being installed first
    READY = "ready"  # the dev server answers
    IDLE = "idle"  # no dev server; the next request starts one
    FAILED = "failed"  # dependencies not installable, or a dev server that keeps crashing


class Event(StrEnum):
    START = "start"  # a dev server is wanted and its dependencies are there
    INSTALL = "install"  # a dev server is wanted but its dependency set must be installed
    BOOT = "boot"  # dependencies there, the dev server process is being started
    SERVING = "serving"  # the dev server answers
    INSTALL_FAILED = "install_failed"
    CRASHED = "crashed"  # the dev server (or preparing it) failed: backoff, then a restart
    GAVE_UP = "gave_up"  # it crashed too often in a row: failed until an upload retries it
    FILES_CHANGED = "files_changed"  # an upload to a session whose dev server gave up: retry
    STOPPED = "stopped"  # the dev server task ended (idle stop, eviction, drain)
    NO_ROOM = "no_room"  # wanted, but every slot is taken: wait for a request
    DEPS_CHANGED = "deps_changed"  # an upload changed the dependencies: start over


S, E = Status, Event
_ACTIVE = (S.STARTING, S.INSTALLING, S.READY)

TRANSITIONS: dict[tuple[Status, Event], Status] = {
    **{(s, E.START): S.STARTING for s in (S.IDLE, S.STARTING)},
    **{(s, E.INSTALL): S.INSTALLING for s in (S.IDLE, S.STARTING)},
    **{(s, E.BOOT): S.STARTING for s in (S.STARTING, S.INSTALLING)},
    (S.STARTING, E.SERVING): S.READY,
    (S.INSTALLING, E.INSTALL_FAILED): S.FAILED,
    # From idle too: a dev server told to stop (an upload's restart) may fail on its way out.
    **{(s, E.CRASHED): S.IDLE for s in (*_ACTIVE, S.IDLE)},
    **{(s, E.STOPPED): S.IDLE for s in (*_ACTIVE, S.IDLE)},
    **{(s, E.GAVE_UP): S.FAILED for s in (*_ACTIVE, S.IDLE)},
    (S.FAILED, E.STOPPED): S.FAILED,
    (S.FAILED, E.FILES_CHANGED): S.IDLE,
    **{(s, E.NO_ROOM): S.IDLE for s in (S.STARTING, S.IDLE)},
    **{(s, E.DEPS_CHANGED): S.IDLE for s in Status},
}


class IllegalMove(RuntimeError):
    """A status change the lifecycle does not allow: a bug in the caller."""


def next_status(current: Status, event: Event) -> Status:
    try:
        return TRANSITIONS[(current, event)]
    except KeyError:
        raise IllegalMove(f"{event} is not allowed while {current}") from None


def on_load(error: str | None) -> Status:
    """The status of a session read back from disk after a restart: a session that failed
    (its install, or its dev server too often) stays failed until an upload retries it."""
    return S.FAILED if error else S.IDLE

"""Each dev server in its own sandbox: bubblewrap's argv for one session (pure), and the probe.

Uploads are hostile (CONTRACT §6), and once the app's own Vite config runs, so does
its code. The sandbox is what makes that safe, not checks on the code: the dev server
and everything it spawns see

- the session's workspace (read-write) and nothing else of the data dir: not other
  sessions, not the secret or token files, not the node's environment;
- its dependency set and the runtime, read-only; `/usr` read-only; a private `/tmp`,
  a minimal `/dev` and its own `/proc` (its own PID namespace: it cannot see or signal
  the node's processes, and everything in it dies with it);
- no network at all (its own network namespace has only `lo`): it listens on a unix
  socket in a directory shared with the node, and the node forwards to that.

Paths inside are the host's paths (bound one to one), so the launcher's configuration
and Vite's module paths need no translation; only the bound directories exist there.
Never: pass a secret in argv (`/proc/1/cmdline` inside shows bwrap's whole argv), or
bind a directory that holds more than one session.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger("preview.sandbox")
Mode = Literal["required", "auto", "off"]
# What a dev server needs of the system: binaries and libraries (Debian merges /bin and
# /lib into /usr), and the dynamic linker's cache and OpenSSL's config, which hold no secret.
_SYSTEM_RO = ("/usr", "/etc/ld.so.cache", "/etc/ssl", "/etc/alternatives")
_MERGED_USR = ("bin", "lib", "lib64", "sbin")


# A tmpfs is memory: unsized, each would take up to half the machine's RAM (the memory
# cgroup charges it where one exists; rlimits never do). Vite writes little there.
TMP_BYTES = 128 * 1024 * 1024
SCRATCH_BYTES = 64 * 1024 * 1024


class SandboxUnavailable(RuntimeError):
    """`--sandbox required` on a machine where bubblewrap cannot make a sandbox."""


@dataclass(frozen=True)
class Mounts:
    """What one session's dev server may see (host paths, bound at the same paths)."""

    workspace: Path  # read-write
    socket_dir: Path  # read-write: the dev server's listener, shared with the node
    cache_dir: Path  # read-write: Vite's cache and HOME
    read_only: tuple[Path, ...]  # dependency set, runtime, the node binary's directory
    # Private, writable, empty: where tools write inside read-only trees (Vite bundles a
    # TS config into `node_modules/.vite-temp/`); each must exist as a directory.
    scratch: tuple[Path, ...] = ()


def bwrap_argv(bwrap: str, mounts: Mounts, command: Sequence[str]) -> list[str]:
    """The full argv: bubblewrap's options, then `command` run in the workspace."""
    argv = [
        bwrap,
        "--unshare-all",  # user (where possible), ipc, pid, net, uts, cgroup namespaces
        "--die-with-parent",
        "--new-session",  # no terminal to push keystrokes into
        "--hostname",
        "preview",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(TMP_BYTES),
        "--tmpfs",
        "/tmp",
    ]
    for system in _SYSTEM_RO:
        if Path(system).exists():
            argv += ["--ro-bind", system, system]
    for name in _MERGED_USR:
        top = Path("/") / name
        if top.is_symlink():
            argv += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            argv += ["--ro-bind", str(top), str(top)]
    for ro in _unique(mounts.read_only, [Path(p) for p in _SYSTEM_RO]):
        argv += ["--ro-bind", str(ro), str(ro)]
    for rw in (mounts.cache_dir, mounts.socket_dir, mounts.workspace):
        argv += ["--bind", str(rw), str(rw)]
    for scratch in mounts.scratch:
        argv += ["--size", str(SCRATCH_BYTES), "--tmpfs", str(scratch)]
    argv += [
        "--remount-ro",
        "/",  # the sandbox's own root (a tmpfs) is not writable either
        "--chdir",
        str(mounts.workspace),  # Tailwind v3 and others look for configs in the cwd
        "--",
        *command,
    ]
    return argv


def supervised(argv: Sequence[str], prelude: str = "") -> list[str]:
    """`argv` under a long-lived shell parent, which runs `prelude` first (joining the
    session's cgroups, setting rlimits: previewnode.limits).

    `--die-with-parent` ties the sandbox to the *thread* that forked bwrap, and trio
    forks from a worker thread that exits after 10 idle seconds: every sandbox died
    then. The shell is the parent instead, and passes its stdin on (an asynchronous
    list gets /dev/null otherwise), so the launcher still exits when the node does."""
    return ["/bin/sh", "-c", prelude + 'exec 3<&0; "$@" <&3 & wait $!', "sandbox", *argv]


def _unique(paths: Sequence[Path], bound: Sequence[Path] = ()) -> list[Path]:
    """Each path once, and none inside another already bound (a bind would shadow it)."""
    out: list[Path] = []
    for path in sorted({p.resolve() for p in paths}, key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(kept) for kept in (*bound, *out)):
            out.append(path)
    return out


def probe(bwrap: str) -> str | None:
    """None if bubblewrap can make this sandbox here (the real argv), else why not."""
    with tempfile.TemporaryDirectory(prefix="preview-sandbox-probe-") as tmp:
        mounts = Mounts(Path(tmp), Path(tmp), Path(tmp), ())
        try:
            done = subprocess.run(
                bwrap_argv(bwrap, mounts, ["/usr/bin/true"]),
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
    if done.returncode != 0:
        return done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
    return None


def choose(mode: Mode) -> str | None:
    """The bubblewrap binary to use, or None for no sandbox (`auto` falls back, logged)."""
    if mode == "off":
        return None
    bwrap = shutil.which("bwrap")
    why = "bubblewrap (bwrap) is not installed" if bwrap is None else probe(bwrap)
    if why is None:
        return bwrap
    if mode == "required":
        raise SandboxUnavailable(f"--sandbox required, but no sandbox can be made: {why}")
    log.warning(
        "no sandbox: dev servers run unsandboxed, uploaded configs ignored", extra={"why": why}
    )
    return None

"""Each dev server in its own sandbox: bubblewrap's argv or the Landlock policy for one
session (pure), the probes, and the choice between them.

Uploads are hostile (CONTRACT §6), and once the app's own Vite config runs, so does
its code. The sandbox is what makes that safe, not checks on the code: the dev server
and everything it spawns see

- the session's workspace (read-write) and nothing else of the data dir: not other
  sessions, not the secret or token files, not the node's environment;
- its dependency set and the runtime, read-only; `/usr` read-only; a private `/tmp`,
  a minimal `/dev` and its own `/proc` (its own PID namespace: it cannot see or signal
  the node's processes, and everything in it dies with it);
- no network at all (its own network namespace has only `lo`): it listens on a unix
  socket the node bound and handed it as a descriptor, in a directory only the node sees
  (a path the sandbox could write would let it plant a link there, and the node would
  connect wherever that pointed: any unix socket on the host).

Where user namespaces are not allowed (a default Kubernetes pod), `landlock` confines
the dev server without them (`previewnode/confine.py` is its parent): what it may read
and write by Landlock path rules, TCP only to its own loopback port (the node connects
to that port: there is no unix socket), no other socket family (seccomp), no signals or
ptrace outside it, no capabilities. It has no PID namespace: `confine` kills what it
leaves. docs/architecture.md lists what each mechanism does and does not give.

Inside bubblewrap the session's own directories are at fixed paths (`INSIDE_*`), whatever
their host paths: every sandbox looks the same inside, so one started ahead of need
(previewnode.warm) can be handed to any session, and an app sees one root whether it woke
warm or cold. The rest (the runtime, the dependency set, `/usr`) is bound at its host
path, read-only. Under Landlock (no mounts) the dev server sees host paths. Never: pass
a secret in argv (`/proc/1/cmdline` inside shows bwrap's whole argv), or bind a directory
that holds more than one session.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger("preview.sandbox")
Mode = Literal["required", "auto", "off"]
Mechanism = Literal["bwrap", "landlock"]
CONFINE = Path(__file__).resolve().parent / "confine.py"
# What a dev server needs of the system: binaries and libraries (Debian merges /bin and
# /lib into /usr), and the dynamic linker's cache and OpenSSL's config, which hold no secret.
_SYSTEM_RO = ("/usr", "/etc/ld.so.cache", "/etc/ssl", "/etc/alternatives")
_MERGED_USR = ("bin", "lib", "lib64", "sbin")


# Where bubblewrap binds a session's workspace and Vite cache.
INSIDE = Path("/preview")
INSIDE_WORKSPACE = INSIDE / "app"
INSIDE_CACHE = INSIDE / "cache"

# A tmpfs is memory: unsized, each would take up to half the machine's RAM (the memory
# cgroup charges it where one exists; rlimits never do). Vite writes little there.
TMP_BYTES = 128 * 1024 * 1024
SCRATCH_BYTES = 64 * 1024 * 1024


class SandboxUnavailable(RuntimeError):
    """`--sandbox required` on a machine where no mechanism can make a sandbox."""


@dataclass(frozen=True)
class Sandbox:
    """How dev servers are confined: bubblewrap (`binary` is bwrap), or Landlock under
    `confine.py` (`binary` is the Python that runs it)."""

    mechanism: Mechanism
    binary: str

    @property
    def listens_on_socket(self) -> bool:
        """bwrap: a unix socket the node bound and passed in, bridged out of its network
        namespace; landlock: the loopback port the node chose, which only that dev server
        may bind or connect."""
        return self.mechanism == "bwrap"


@dataclass(frozen=True)
class Mounts:
    """What one session's dev server may see (host paths; bubblewrap binds the first two
    at `INSIDE_*`, the rest at their host paths)."""

    workspace: Path  # read-write
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
        if ro.is_relative_to(INSIDE):
            raise ValueError(f"{ro} would be hidden by the session's own directories")
        argv += ["--ro-bind", str(ro), str(ro)]
    for rw, inside in ((mounts.cache_dir, INSIDE_CACHE), (mounts.workspace, INSIDE_WORKSPACE)):
        argv += ["--bind", str(rw), str(inside)]
    for scratch in mounts.scratch:
        argv += ["--size", str(SCRATCH_BYTES), "--tmpfs", str(scratch)]
    argv += [
        "--remount-ro",
        "/",  # the sandbox's own root (a tmpfs) is not writable either
        "--chdir",
        str(INSIDE_WORKSPACE),  # Tailwind v3 and others look for configs in the cwd
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


def prelude_then_exec(argv: Sequence[str], prelude: str) -> list[str]:
    """`argv` in place of a shell that runs `prelude` first (cgroups, rlimits). For
    `confine.py`, which is its own long-lived parent: the node's SIGTERM must reach it,
    and the node's wait end only when it exits. A shell parent (`supervised`) would die of
    that SIGTERM at once, and the node's SIGKILL of the group would follow before
    `confine.py` had killed what left the group."""
    return ["/bin/sh", "-c", prelude + 'exec "$@"', "sandbox", *argv]


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
        mounts = Mounts(Path(tmp), Path(tmp), ())
        return _why_not(bwrap_argv(bwrap, mounts, ["/usr/bin/true"]))


def _why_not(argv: Sequence[str], cwd: str | None = None) -> str | None:
    """Run a probe: None when it exits 0, else what it said (or why it could not run).
    Its stdin is /dev/null: confine.py stops on a hung-up stdin (the node is gone)."""
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False, cwd=cwd
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
    return None


def landlock_policy(mounts: Mounts, port: int) -> dict[str, object]:
    """What `confine.py` lets one dev server touch: the same trees bubblewrap binds, by
    Landlock rule instead of by mount (pure but for which system paths exist here).

    Not `/proc` (node and Vite run without it; it would show every process's command
    line and, in `/proc/net/unix`, every unix socket's path), not `/sys`, not `/tmp`: its
    temp dir is in its cache dir (`TMPDIR`, set by the node). Scratch dirs are not
    writable here (no mounts: they are shared with other sessions); the launcher makes
    Vite bundle a TS config beside it instead."""
    read_only = [p for p in _SYSTEM_RO if Path(p).is_dir()]
    read_only += [f"/{n}" for n in _MERGED_USR if Path(f"/{n}").is_dir() and not _link(n)]
    read_only += [str(p) for p in _unique(mounts.read_only, [Path(p) for p in read_only])]
    read_write = [str(mounts.workspace), str(mounts.cache_dir)]
    files = {p: "r" for p in _SYSTEM_RO if Path(p).is_file()}
    files.update({"/dev/null": "rw", "/dev/zero": "r", "/dev/urandom": "r", "/dev/random": "r"})
    return {"ro": read_only, "rw": read_write, "files": files, "port": port}


def _link(name: str) -> bool:
    return (Path("/") / name).is_symlink()


def confine_argv(python: str, policy: dict[str, object], command: Sequence[str]) -> list[str]:
    """`confine.py` with its policy as flags (paths and a port: nothing secret; JSON would
    cost its parser's import on every start), then `command`."""
    argv = [python, "-I", "-S", str(CONFINE)]
    for key, flag in (("ro", "--ro"), ("rw", "--rw")):
        for path in policy.get(key, ()):  # type: ignore[attr-defined]
            argv += [flag, str(path)]
    for path, access in policy.get("files", {}).items():  # type: ignore[attr-defined]
        argv += ["--write-file" if access == "rw" else "--read-file", str(path)]
    return [*argv, "--port", str(policy.get("port", 0)), "--", *command]


def probe_landlock(python: str) -> str | None:
    """None if this kernel has Landlock with TCP rules and seccomp filters, and a dev
    server's confinement really runs here (`/usr/bin/true` under it), else why not."""
    with tempfile.TemporaryDirectory(prefix="preview-sandbox-probe-") as tmp:
        mounts = Mounts(Path(tmp), Path(tmp), ())
        argv = confine_argv(python, landlock_policy(mounts, 0), ["/usr/bin/true"])
        return _why_not(argv, cwd=tmp)


def choose(mode: Mode, mechanism: Literal["auto", "bwrap", "landlock"] = "auto") -> Sandbox | None:
    """The sandbox to use, or None for none (`auto` falls back, logged): bubblewrap where
    its probe works, else Landlock where its probe works; `mechanism` forces one."""
    if mode == "off":
        return None
    why: list[str] = []
    if mechanism in ("auto", "bwrap"):
        bwrap = shutil.which("bwrap")
        failed = "bubblewrap (bwrap) is not installed" if bwrap is None else probe(bwrap)
        if bwrap is not None and failed is None:
            return Sandbox("bwrap", bwrap)
        why.append(f"bwrap: {failed}")
    if mechanism in ("auto", "landlock"):
        failed = probe_landlock(sys.executable)
        if failed is None:
            from previewnode.confine import landlock_abi  # ctypes: only where it is chosen

            if (abi := landlock_abi()) < 6:
                log.warning(
                    "Landlock ABI < 6: dev servers may signal the node's processes",
                    extra={"abi": abi},
                )
            return Sandbox("landlock", sys.executable)
        why.append(f"landlock: {failed}")
    reasons = "; ".join(why)
    if mode == "required":
        raise SandboxUnavailable(f"--sandbox required, but no sandbox can be made: {reasons}")
    log.warning(
        "no sandbox: dev servers run unsandboxed, uploaded configs ignored",
        extra={"why": reasons},
    )
    return None

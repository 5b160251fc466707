"""podman as this machine needs it: a private containers.conf, and the calls the phases make.

The machine's own configuration is left alone: every call gets `CONTAINERS_CONF` naming
`run/images/containers.conf`, written here from this process's limits:

- `runtime = "runc"`: Debian's crun (1.8.1) refuses hybrid cgroups (v1 controllers and
  a unified hierarchy, as on this VM): "cgroups in hybrid mode not supported, drop all
  controllers from cgroupv2";
- `cgroup_manager = "cgroupfs"`, `events_logger = "file"`: no systemd here;
- `default_ulimits` within reach: podman's default (1048576 open files and processes)
  is more than processes get here, and runc then fails with "error setting rlimits ...
  operation not permitted". podman itself runs with at most 32768 processes here
  (measured: a container asking more is refused), so that is the ceiling.

Never: pull (every image is local; `--pull=never`), or give a caller's arguments to a
shell.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "run" / "images"
LOGS = WORK / "logs"
# The host's CA bundle: pip and npm in builds and in the node container trust only what
# it holds (read-only bind mounts; the images' own bundle is Debian's ca-certificates).
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
NPROC_CEILING = 32768


class Failed(RuntimeError):
    """A step failed; the message says which, and where its log is."""


def containers_conf(nofile: int, nproc: int) -> str:
    return f"""# Written by scripts/images for its own podman calls (CONTAINERS_CONF): see
# scripts/preview_images/podman.py. The machine's containers.conf is not changed.
[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def _hard_limit(which: int, ceiling: int) -> int:
    hard = resource.getrlimit(which)[1]
    return ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)


def environment() -> dict[str, str]:
    """os.environ with CONTAINERS_CONF naming a freshly written private containers.conf."""
    WORK.mkdir(parents=True, exist_ok=True)
    conf = WORK / "containers.conf"
    conf.write_text(
        containers_conf(
            _hard_limit(resource.RLIMIT_NOFILE, 1 << 20),
            _hard_limit(resource.RLIMIT_NPROC, NPROC_CEILING),
        )
    )
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


class Podman:
    """podman with the private configuration; output to a log file or returned."""

    def __init__(self) -> None:
        self.env = environment()
        LOGS.mkdir(parents=True, exist_ok=True)
        self.replaced: list[str] = []  # IDs of images whose tag a rebuild took

    def note_replaced(self, ref: str, before: str | None) -> None:
        """Remember `ref`'s previous image for `remove_replaced` if a rebuild changed it."""
        if before is not None and before != self.image_id(ref):
            self.replaced.append(before)

    def remove_replaced(self) -> None:
        """Remove the images that rebuilds untagged (children first; any in use stays)."""
        for image in reversed(self.replaced):
            self("rmi", image, check=False)
        self.replaced.clear()

    def __call__(self, *args: str, log: str | None = None, check: bool = True) -> str:
        """Run `podman ARGS`; with `log`, its output goes to LOGS/{log}.log (appended)."""
        return run(["podman", *args], self.env, log, check)

    def build(self, *args: str, log: str) -> None:
        """`podman build ARGS`; a build that fails or is interrupted leaves its working
        containers in storage (podman 4.3, SIGINT and SIGTERM alike): they are removed."""
        before = self._build_containers()
        try:
            self("build", *args, log=log)
        except BaseException:
            for left in self._build_containers() - before:
                self("rm", "--force", left, check=False)
            raise

    def _build_containers(self) -> set[str]:
        out = self("ps", "--all", "--external", "--format", "{{.ID}} {{.Command}}", check=False)
        return {line.split()[0] for line in out.splitlines() if line.endswith(" buildah")}

    def image_id(self, ref: str) -> str | None:
        out = self("image", "inspect", "--format", "{{.Id}}", ref, check=False)
        return out.strip() or None

    def image_label(self, ref: str, key: str) -> str | None:
        out = self("image", "inspect", "--format", "{{json .Labels}}", ref, check=False)
        if not out.strip():
            return None
        labels = json.loads(out) or {}
        value = labels.get(key)
        return str(value) if value is not None else None

    def image_size(self, ref: str) -> int:
        return int(self("image", "inspect", "--format", "{{.Size}}", ref).strip())

    def running(self, name: str) -> bool:
        out = self("container", "inspect", "--format", "{{.State.Running}}", name, check=False)
        return out.strip() == "true"


def run(argv: Sequence[str], env: dict[str, str], log: str | None, check: bool = True) -> str:
    """argv's stdout (or '' when it went to a log); Failed, naming the log, if it failed."""
    if log is None:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise Failed(f"{' '.join(argv[:3])} ... exited {done.returncode}:\n{done.stderr}")
        return done.stdout
    path = LOGS / f"{log}.log"
    with path.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        started = time.monotonic()
        with subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc:
            assert proc.stdout is not None
            try:
                for line in proc.stdout:  # each line stamped: where a build spends its time
                    out.write(f"[{time.monotonic() - started:6.1f}s] {line}")
            except BaseException:  # Ctrl-C, SIGTERM: the step stops with us
                proc.terminate()
                raise
        code = proc.returncode
    if check and code != 0:
        raise Failed(f"{' '.join(argv[:3])} ... exited {code}; see {path}:\n{tail(path)}")
    return ""

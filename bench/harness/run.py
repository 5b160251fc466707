"""One benchmark run: its timestamp, temp dir, supervisor of child processes and results file.

Every child goes through `tests/support/processes.py`, so it runs in its own process group
and is stopped (SIGTERM, then SIGKILL after the grace period) when the run ends: normally,
on an error, on Ctrl-C or on SIGTERM. The temp dir is removed afterwards unless kept.
Loops that drive load are bounded by `bounded`, in count and in time.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.processes import Processes, processes

RESULTS = Path(__file__).resolve().parents[1] / "results"


@dataclass
class Run:
    stamp: str
    tmp: Path
    procs: Processes
    started: float

    def write(self, name: str, result: dict[str, Any]) -> Path:
        """Record the elapsed time in `meta`, write `bench/results/{name}`, say where."""
        result["meta"].setdefault("elapsed_s", round(time.monotonic() - self.started, 1))
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / name
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nJSON: {path}  ({result['meta']['elapsed_s']}s)")
        return path


def run_bench(
    body: Callable[[Run], int],
    prefix: str,
    keep_temp: bool,
    grace: float,
    stopping: str,
    cwd: Path | None = None,
) -> int:
    """body(run) inside a supervisor whose children start in `cwd` (default: ours); 130
    on Ctrl-C or SIGTERM (after saying so)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        with processes(tmp, grace=grace, cwd=cwd) as procs:
            try:
                return body(Run(stamp, tmp, procs, time.monotonic()))
            except KeyboardInterrupt:
                print(f"\ninterrupted; stopping {stopping}", file=sys.stderr)
                return 130
    finally:
        if keep_temp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def bounded(n: int, seconds: float) -> Iterable[int]:
    """range(n), stopping early once `seconds` have passed."""
    deadline = time.monotonic() + seconds
    for i in range(n):
        if time.monotonic() > deadline:
            print(f"    (time bound hit after {i} of {n})", flush=True)
            return
        yield i


def progress(msg: str) -> None:
    print(f"  {msg}", flush=True)

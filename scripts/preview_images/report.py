"""What a run measured: one `Step` per timed step, a table, and the JSON file.

Sizes are podman's (`podman image inspect` .Size, the image's uncompressed layers),
shown in MB of 10^6 bytes as `podman images` shows them.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Step:
    phase: str  # base | build | smoke
    name: str
    seconds: float = 0.0
    # CPU time of the processes the step waited for (mmdebstrap, podman and the build
    # steps it runs; not a container's own processes): less bent by other load than time.
    cpu_seconds: float = 0.0
    status: str = "ok"  # ok | kept (inputs unchanged) | failed
    image: str | None = None
    bytes: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    started: float = field(default_factory=time.monotonic)
    stamp: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S"))
    steps: list[Step] = field(default_factory=list)
    load: list[float] = field(default_factory=lambda: [round(x, 2) for x in os.getloadavg()])

    @contextmanager
    def step(self, phase: str, name: str) -> Iterator[Step]:
        """Time the block as one step; a step whose block raised is marked failed."""
        s = Step(phase, name)
        self.steps.append(s)
        print(f"images: {phase}/{name} ...", flush=True)
        t, cpu = time.monotonic(), _children_cpu()
        try:
            yield s
        except KeyboardInterrupt:
            s.status = "interrupted"
            raise
        except BaseException:
            s.status = "failed"
            raise
        finally:
            s.seconds = round(time.monotonic() - t, 1)
            s.cpu_seconds = round(_children_cpu() - cpu, 1)

    def weigh(self, s: Step, image: str, size: Callable[[str], int]) -> None:
        s.image, s.bytes = image, size(image)

    def table(self) -> str:
        rows = [("phase/step", "time", "cpu", "status", "image", "size")]
        for s in self.steps:
            size = f"{s.bytes / 1e6:.0f} MB" if s.bytes is not None else ""
            rows.append(
                (
                    f"{s.phase}/{s.name}",
                    f"{s.seconds:.1f} s",
                    f"{s.cpu_seconds:.1f} s",
                    s.status,
                    s.image or "",
                    size,
                )
            )
        total = round(time.monotonic() - self.started, 1)
        cpu = round(sum(s.cpu_seconds for s in self.steps), 1)
        rows.append(("total", f"{total:.1f} s", f"{cpu:.1f} s", "", "", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

        def line(row: tuple[str, ...]) -> str:
            cells = [
                c.rjust(w) if i in (1, 2, 5) else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            return "  ".join(cells).rstrip()

        load = (
            f"load average (1 min): {self.load[0]:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} CPUs"
        )
        return "\n".join([*(line(r) for r in rows), load])

    def write(self, command: str) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"images-{self.stamp}.json"
        result = {
            "meta": {
                "command": command,
                "stamp": self.stamp,
                "elapsed_s": round(time.monotonic() - self.started, 1),
                "machine": platform.node(),
                "kernel": platform.release(),
                # Other work on the machine slows every phase: the load it had, start and end.
                "loadavg_start": self.load,
                "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            },
            "steps": [asdict(s) for s in self.steps],
        }
        path.write_text(json.dumps(result, indent=2) + "\n")
        return path

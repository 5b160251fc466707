"""What the sandbox adds to a dev server's start: `node -e 0` directly vs inside bubblewrap.

Interleaved (direct, sandboxed, direct, ...), so the machine's drift hits both alike;
the sandbox is `previewnode.sandbox.bwrap_argv` under its shell parent, with the mounts
a real session gets (a workspace, a cache and a socket dir in a temp dir, the runtime
read-only). Prints a table and writes `bench/results/sandbox-start-<ts>.json`.

    .venv/bin/python bench/sandbox_start.py [--runs 40]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from previewnode.sandbox import Mounts, bwrap_argv, supervised  # noqa: E402


def once(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(
        argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=30
    )
    return (time.perf_counter() - t) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    bwrap, node = shutil.which("bwrap"), shutil.which("node")
    if bwrap is None or node is None:
        print("needs bwrap and node on PATH", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        root = Path(tmp)
        for name in ("ws", "cache", "sock"):
            (root / name).mkdir()
        mounts = Mounts(
            workspace=root / "ws",
            socket_dir=root / "sock",
            cache_dir=root / "cache",
            read_only=(REPO / "previewnode" / "runtime", Path(node).resolve().parent),
        )
        direct = [node, "-e", "0"]
        boxed = supervised(bwrap_argv(bwrap, mounts, direct))
        for argv in (direct, boxed):  # warm-up
            once(argv)
        times: dict[str, list[float]] = {"direct": [], "sandboxed": []}
        for _ in range(max(1, min(args.runs, 500))):
            times["direct"].append(once(direct))
            times["sandboxed"].append(once(boxed))
    rows = {
        k: {
            "median_ms": statistics.median(v),
            "p90_ms": sorted(v)[int(len(v) * 0.9) - 1],
            "min_ms": min(v),
        }
        for k, v in times.items()
    }
    overhead = [s - d for d, s in zip(times["direct"], times["sandboxed"], strict=True)]
    result = {
        "runs": len(overhead),
        "rows": rows,
        "overhead_median_ms": statistics.median(overhead),
        "bwrap": subprocess.run(
            [bwrap, "--version"], capture_output=True, text=True
        ).stdout.strip(),
    }
    print(f"{'':12} {'median':>9} {'p90':>9} {'min':>9}   ({result['runs']} interleaved runs)")
    for name, row in rows.items():
        print(f"{name:12} {row['median_ms']:8.1f}  {row['p90_ms']:8.1f}  {row['min_ms']:8.1f}  ms")
    print(
        "sandbox start overhead (median of pairwise differences):",
        f"{result['overhead_median_ms']:.1f} ms",
    )
    out = REPO / "bench" / "results" / f"sandbox-start-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

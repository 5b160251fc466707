"""What the sandbox adds to a dev server's start: `node -e 0` directly, inside bubblewrap,
and under Landlock (`previewnode/confine.py`).

Interleaved (direct, bwrap, landlock, direct, ...), so the machine's drift hits all
alike; each sandbox is the argv a real session gets, under its shell parent:
`previewnode.sandbox.bwrap_argv` with its mounts (a workspace, a cache and a socket dir
in a temp dir, the runtime read-only), and `confine_argv` with `landlock_policy` for the
same trees. A mechanism whose probe fails here is left out. Prints a table and writes
`bench/results/sandbox-start-<ts>.json`.

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

from previewnode.sandbox import (  # noqa: E402
    Mounts,
    bwrap_argv,
    confine_argv,
    landlock_policy,
    prelude_then_exec,
    probe,
    probe_landlock,
    supervised,
)


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
    if node is None:
        print("needs node on PATH", file=sys.stderr)
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
        argvs = {"direct": direct}
        if bwrap is not None and probe(bwrap) is None:
            argvs["bwrap"] = supervised(bwrap_argv(bwrap, mounts, direct))
        if probe_landlock(sys.executable) is None:
            policy = landlock_policy(mounts, 0)
            confined = confine_argv(sys.executable, policy, direct)
            argvs["landlock"] = prelude_then_exec(confined, "")
        for argv in argvs.values():  # warm-up
            once(argv)
        times: dict[str, list[float]] = {name: [] for name in argvs}
        for _ in range(max(1, min(args.runs, 500))):
            for name, argv in argvs.items():
                times[name].append(once(argv))
    rows = {
        k: {
            "median_ms": statistics.median(v),
            "p90_ms": sorted(v)[int(len(v) * 0.9) - 1],
            "min_ms": min(v),
        }
        for k, v in times.items()
    }
    overhead = {
        name: statistics.median(s - d for d, s in zip(times["direct"], v, strict=True))
        for name, v in times.items()
        if name != "direct"
    }
    result = {
        "runs": len(times["direct"]),
        "rows": rows,
        "overhead_median_ms": overhead,
        "bwrap": subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.strip()
        if bwrap
        else None,
    }
    print(f"{'':12} {'median':>9} {'p90':>9} {'min':>9}   ({result['runs']} interleaved runs)")
    for name, row in rows.items():
        print(f"{name:12} {row['median_ms']:8.1f}  {row['p90_ms']:8.1f}  {row['min_ms']:8.1f}  ms")
    for name, ms in overhead.items():
        print(f"{name} start overhead (median of pairwise differences): {ms:.1f} ms")
    out = REPO / "bench" / "results" / f"sandbox-start-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

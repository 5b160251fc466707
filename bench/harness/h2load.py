"""h2load (`--h1`, one thread): run it bounded in requests and time, parse its summary, and
read per-request latencies from its `--log-file`."""

from __future__ import annotations

import re
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench.harness.pinning import taskset
from bench.harness.stats import percentile

MAX_REQUESTS = 400_000  # per measured run, whatever the rate
_UNIT = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def run(url: str, n: int, c: int, core: int | None, log: Path | None, timeout: float) -> str:
    """h2load's stdout for `n` requests over `c` connections; killed after `timeout` s."""
    argv = [*taskset(core), "h2load", "--h1", "-n", str(n), "-c", str(c), "-t", "1"]
    if log is not None:
        argv += ["--log-file", str(log)]
    proc = subprocess.run([*argv, url], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"h2load failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def sized(rate: float, seconds: float, c: int) -> int:
    """Requests for about `seconds` at `rate`: a multiple of c, at least 20 per connection,
    at most MAX_REQUESTS."""
    n = int(rate * seconds)
    n = max(20 * c, min(MAX_REQUESTS, n))
    return max(c, n - n % c)


def _us(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse(out: str) -> dict[str, Any]:
    """seconds, req_per_s, requests{...}, status{2xx...}, h2load_time_for_request_us."""
    res: dict[str, Any] = {}
    m = re.search(r"finished in ([\d.]+(?:us|ms|s)), ([\d.]+) req/s", out)
    if not m:
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    res["seconds"] = _us(m.group(1)) / 1e6
    res["req_per_s"] = float(m.group(2))
    m = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        out,
    )
    if m:
        keys = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
        res["requests"] = dict(zip(keys, map(int, m.groups()), strict=True))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if m:
        res["status"] = dict(zip(("2xx", "3xx", "4xx", "5xx"), map(int, m.groups()), strict=True))
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if m:
        res["h2load_time_for_request_us"] = dict(
            zip(("min", "max", "mean", "sd"), map(_us, m.groups()), strict=True)
        )
    return res


def latency_from_log(path: Path) -> dict[str, float]:
    """mean/p50/p90/p99/max in microseconds of the successful requests in an h2load log."""
    durations = []
    with path.open() as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1] == "200":
                durations.append(float(parts[2]))
    durations.sort()
    if not durations:
        return {}
    return {
        "count": len(durations),
        "mean": round(statistics.fmean(durations), 1),
        "p50": percentile(durations, 50),
        "p90": percentile(durations, 90),
        "p99": percentile(durations, 99),
        "max": durations[-1],
    }

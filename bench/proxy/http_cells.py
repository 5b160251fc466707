"""One HTTP cell (a file size, a concurrency, a target) measured with h2load: a probe, a
warm-up, then one run sized to `--seconds`, with the CPU each watched server spent per
request (summed over its processes: a router's workers) and how busy each core was. A cell
whose server core was busier than the process under test explains is NOISY and measured
again (`--retry-noisy`); the quieter run is kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.harness import h2load
from bench.harness.cpu import CLK_TCK, core_busy, core_times, cpu_ticks

NOISE_PCT = 15.0  # server-core busy % not explained by the process under test (+ softirq)


def is_noisy(res: dict[str, Any]) -> bool:
    return bool(res.get("foreign_server_core_pct", 0.0) > NOISE_PCT)


def _ticks(pids: tuple[int, ...]) -> tuple[int, int]:
    """(utime, stime) summed over the processes of one server (a router's workers)."""
    both = [cpu_ticks(pid) for pid in pids]
    return sum(u for u, _ in both), sum(s for _, s in both)


def measure_cell(
    url: str, c: int, args: argparse.Namespace, tmp: Path, watch: dict[str, tuple[int, ...]]
) -> dict[str, Any]:
    """`measure_http`, again up to `--retry-noisy` times while NOISY; the quietest run."""
    res = measure_http(url, c, args, tmp, watch)
    for _ in range(args.retry_noisy):
        if not is_noisy(res):
            break
        print(" noisy, again ...", end="", flush=True)
        again = measure_http(url, c, args, tmp, watch)
        if again["foreign_server_core_pct"] < res["foreign_server_core_pct"]:
            res = again
    return res


def measure_http(
    url: str, c: int, args: argparse.Namespace, tmp: Path, watch: dict[str, tuple[int, ...]]
) -> dict[str, Any]:
    """Probe, warm up, then one measured run sized to `args.seconds` (bounded in count too)."""
    core = args.load_core
    probe = h2load.parse(h2load.run(url, max(20 * c, 300), c, core, None, 30))
    warm_n = h2load.sized(probe["req_per_s"], args.warmup, c)
    warm = h2load.parse(h2load.run(url, warm_n, c, core, None, args.warmup * 5 + 20))
    n = h2load.sized(warm["req_per_s"], args.seconds, c)
    log = tmp / "h2load.log"
    cpu0 = {k: _ticks(pids) for k, pids in watch.items()}
    cores0 = core_times()
    out = h2load.run(url, n, c, core, log, args.seconds * 5 + 30)
    cores1 = core_times()
    cpu1 = {k: _ticks(pids) for k, pids in watch.items()}
    res = h2load.parse(out)
    res["latency_us"] = h2load.latency_from_log(log)
    log.unlink()
    ok = res.get("requests", {}).get("succeeded", 0) or 1
    res["n"] = n
    user = {k: (cpu1[k][0] - cpu0[k][0]) / CLK_TCK for k in watch}
    system = {k: (cpu1[k][1] - cpu0[k][1]) / CLK_TCK for k in watch}
    res["cpu_us_per_req"] = {k: round((user[k] + system[k]) * 1e6 / ok, 2) for k in watch}
    res["cpu_user_us_per_req"] = {k: round(user[k] * 1e6 / ok, 2) for k in watch}
    res["cpu_sys_us_per_req"] = {k: round(system[k] * 1e6 / ok, 2) for k in watch}
    res["cpu_cores_used"] = {
        k: round((user[k] + system[k]) / max(res["seconds"], 1e-9), 3) for k in watch
    }
    res["core_busy_pct"] = core_busy(cores0, cores1)
    if args.server_core is not None:
        # Server-core time none of our processes account for: other people's load.
        ours = 100.0 * res["cpu_cores_used"].get("proxy", 0.0)
        res["foreign_server_core_pct"] = round(
            max(0.0, res["core_busy_pct"].get(f"cpu{args.server_core}", 0.0) - ours), 1
        )
    return res

"""Nearest-rank percentiles and the latency summaries both benchmarks print."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any


def percentile(sorted_vals: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of values sorted ascending; nan when empty."""
    if not sorted_vals:
        return float("nan")
    idx = min(len(sorted_vals) - 1, max(0, round(q / 100.0 * len(sorted_vals) + 0.5) - 1))
    return sorted_vals[idx]


def summary_ms(seconds: Iterable[float]) -> dict[str, Any]:
    """{n, p50, p90, p99, mean, min, max} in ms of durations given in seconds."""
    ms = [v * 1000 for v in seconds]
    if not ms:
        return {"n": 0}
    s = sorted(ms)
    return {
        "n": len(ms),
        "p50": round(percentile(s, 50), 2),
        "p90": round(percentile(s, 90), 2),
        "p99": round(percentile(s, 99), 2),
        "mean": round(statistics.fmean(ms), 2),
        "min": round(s[0], 2),
        "max": round(s[-1], 2),
    }

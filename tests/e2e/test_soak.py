"""The soak's CI length (issue 14): a minute of mixed traffic through two routers to two
nodes, with the goals asserted instead of printed (bench/soak, bench/README.md).

The soak's own functions run here (no subprocess for the soak itself): the same traffic,
ledger and goals as `bench/soak.py --seconds 60`, sampled every 2 s so that the FD and
RSS floors are taken over enough samples.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bench.soak.main import STOP_GRACE, parse_args, run_soak
from bench.soak.report import print_report
from tests.support.processes import processes

pytestmark = pytest.mark.e2e


def test_a_minute_of_mixed_traffic_has_no_errors_no_missed_updates_and_no_leaks(
    tmp_path: Path,
) -> None:
    args = parse_args(["--seconds", "60", "--sample-every", "2"])
    t0 = time.monotonic()
    with processes(tmp_path, grace=STOP_GRACE) as procs:
        result = run_soak(args, procs, tmp_path)
    print_report(result)
    (tmp_path / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"soak test: {time.monotonic() - t0:.1f} s; result in {tmp_path / 'soak.json'}")
    traffic, updates = result["traffic"], result["updates"]
    assert traffic["errors_total"] == 0, (traffic["errors"], traffic["error_samples"][:5])
    assert updates["pushed"] >= 30, updates  # 4 sessions, an edit each every 5 s
    assert updates["missed"] == 0, updates["missed_edits"]
    assert traffic["events"].get("deletes (churn)", 0) >= 2, traffic["events"]
    unmet = [g for g in result["goals"] if g["verdict"] != "ok"]
    assert not unmet, unmet

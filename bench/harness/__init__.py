"""What both benchmarks share: a run's temp dir, supervisor and results file (`run`), CPU
accounting and process facts from /proc (`cpu`, `procfs`), core pinning (`pinning`),
h2load (`h2load`), percentiles (`stats`) and tool versions (`versions`).

Child processes go through the one supervisor in `tests/support/processes.py`."""

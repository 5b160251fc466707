"""Benchmarks: `harness/` (what every run shares), `proxy/` and `node/` (one module per phase
and a report module each). `proxy_bench.py` and `node_bench.py` are the entry points."""

"""The soak: two routers and two nodes under mixed traffic, FDs and RSS sampled over time.

`stack` (the cluster, through tests/support/cluster.py), `client` (a browser-like
keep-alive HTTP client), `tally` (requests, errors, latencies), `pages` (page loads),
`edits` (edits and the ledger of their updates), `hmr` (the HMR sockets), `churn` (creates
and deletes), `sampler` (FDs and RSS from /proc), `traffic` (all of it at once, bounded),
`goals` (the issue's goals, pure), `report` (the tables), `main` (flags; `run_soak` for the
e2e test). The entry point is `bench/soak.py` (a package beats a module of the same name on
import, so `bench.soak` is always this package)."""

"""The proxy benchmark: direct upstream vs nginx vs preview-router (one or more source trees).

`layout` (temp files, IDs, ports), `nginx` (its configs), `servers` (starting upstreams,
nginx and routers), `http_cells` (one h2load cell with CPU accounting), `websocket` (echo
round trips and the echo server), `compare` (the interleaved run and its ratios), `stacks`
and `profile` (`--profile`), `report` (the tables), `main` (flags)."""

"""The placement benchmark: sessions created through the ring with the router's placement code,
no sockets.

`workload` (the seeded create stream), `policies` (the plain ring, the code before bounded
loads, router/placement.py), `cluster` (nodes' sessions, running Vites and reported loads),
`simulate` (one run with its drain, add and removal), `ids` (what the add and the removal do
to existing IDs), `rings` (ring build and walk timings), `report` (the tables), `main` (flags)."""

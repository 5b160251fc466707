"""The node benchmark: one real `preview-node`, real Vite dev servers, the fixture React app.

`nodes` (starting and stopping nodes, finding their Vites), `api` (the node's HTTP API),
`page` (a first page load like a browser's), `fixture`, `cpu` (who used the CPU), `memory`
(PSS of a Vite's process group); one module per phase: `create` (create -> 201), `ready`
(create -> ready), `vite_pss` (Vite memory), `wake`, `many` (registered-session cost);
`report` (the tables), `main` (flags)."""

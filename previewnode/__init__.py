"""preview-node: the stateful pod that owns sessions and runs their Vite dev servers."""

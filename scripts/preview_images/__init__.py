"""`scripts/images`: container images where no registry is reachable, built and run.

`base` makes the images the Dockerfiles start FROM out of Debian's archive and the npm
registry, `build` builds the project's Dockerfiles with podman, `smoke` runs router and
node containers and checks that they serve a preview and an HMR update, `all` does the
three. Every phase is timed and every image weighed: a table at the end, JSON in
`bench/results/`.

Never: change the machine's podman configuration (podman.py writes a private one), or
pull from a registry.
"""

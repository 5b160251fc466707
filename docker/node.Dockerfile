# syntax=docker/dockerfile:1.7
# preview-node: the stateful pod that runs one Vite dev server per session.
# Build from the repository root:
#   docker build -f docker/node.Dockerfile -t preview-node .
# Python 3.11 for the node itself, Node.js 22 for Vite and npm, and the shared Vite
# runtime (previewnode/runtime) installed with `npm ci --ignore-scripts`.
# Layers go from least to most often changed: OS and Node.js, the runtime's
# node_modules, Python dependencies, the launcher, then the app.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Vite needs Node.js 20.19+ or 22.12+; same Debian release as the Python image.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS runtime
WORKDIR /opt/preview/runtime
COPY previewnode/runtime/package.json previewnode/runtime/package-lock.json ./
# Package scripts never run, here as for sessions (CONTRACT section 6).
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY proxycore ./proxycore
COPY previewcore ./previewcore
COPY router ./router
COPY previewnode ./previewnode
COPY previewclient ./previewclient
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
# bubblewrap: each dev server's sandbox (--sandbox; the chart's default is required).
# Debian's is not setuid: it works through unprivileged user namespaces.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini bubblewrap \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 preview \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin preview \
    && install -d -o 10001 -g 10001 /var/lib/preview
# Node.js and npm from the official image. Dependency sets that the runtime does not
# satisfy are installed by the runtime's own pnpm (with --ignore-scripts), run by node.
COPY --from=runtime /usr/local/bin/node /usr/local/bin/node
COPY --from=runtime /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && node --version && npm --version
# Root-owned and read-only to the node user: sessions resolve against it, never write it.
COPY --from=runtime /opt/preview/runtime /opt/preview/runtime
COPY --from=build /opt/venv /opt/venv
# The launcher, and the page client it reads from beside itself (preview-client.js).
COPY previewnode/runtime/*.mjs previewnode/runtime/*.js /opt/preview/runtime/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PREVIEW_RUNTIME_DIR=/opt/preview/runtime \
    PREVIEW_DATA_DIR=/var/lib/preview \
    HOME=/tmp \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-deps --no-index --no-cache-dir /wheels/*.whl \
    && preview-node --help > /dev/null
USER 10001:10001
WORKDIR /var/lib/preview
EXPOSE 9000 9090
# tini is PID 1: it forwards SIGTERM (the node drains) and reaps what npm and Vite leave.
ENTRYPOINT ["tini", "--"]
CMD ["preview-node", "--listen", "0.0.0.0:9000"]

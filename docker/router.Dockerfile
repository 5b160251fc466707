# syntax=docker/dockerfile:1.7
# preview-router: the stateless edge. Build from the repository root:
#   docker build -f docker/router.Dockerfile -t preview-router .
# Layers go from least to most often changed: OS, Python dependencies, then the app.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies alone first, read from pyproject.toml: a code change keeps this layer.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
# setuptools lists every package, so all five are needed to build the wheel.
COPY proxycore ./proxycore
COPY previewcore ./previewcore
COPY router ./router
COPY previewnode ./previewnode
COPY previewclient ./previewclient
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 preview \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin preview
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-deps --no-index --no-cache-dir /wheels/*.whl \
    && preview-router --help > /dev/null
# Runs with a read-only root filesystem: nothing is written outside /tmp.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 9090
# tini reaps and forwards signals: SIGTERM must reach the router to drain.
ENTRYPOINT ["tini", "--"]
CMD ["preview-router", "--listen", "0.0.0.0:8080", "--ring", "/etc/preview/ring/ring.toml", \
     "--secret-file", "/etc/preview/secret/secret"]

# omnisched: the all-in-one container (and, with OMNISCHED_PARTS, a worker- or Flower-only one).
# Stage 1 builds the wheel from this repository; stage 2 installs it on a slim Python with no
# build tools, runs as a non-root user, and starts supervisord through `omnisched supervise`.

FROM python:3.12-slim AS build
WORKDIR /src
RUN python -m pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md ./
COPY omnisched_allinone ./omnisched_allinone
COPY proto ./proto
COPY config ./config
RUN python -m build --wheel --outdir /dist

FROM python:3.12-slim
# tini is PID 1 (reaps, forwards SIGTERM); supervisord is its child and owns the programs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /dist/*.whl /tmp/
RUN python -m pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin omnisched \
    && mkdir -p /var/log/omnisched /run/omnisched \
    && chown omnisched:omnisched /var/log/omnisched /run/omnisched
USER omnisched
WORKDIR /home/omnisched

# The all-in-one by default; a worker-only container sets OMNISCHED_PARTS=worker, Flower
# OMNISCHED_PARTS=flower. Every program logs to the container's stdout (`docker compose logs`).
ENV PYTHONUNBUFFERED=1 \
    OMNISCHED_PARTS=grpc,http,worker,beat \
    OMNISCHED_LOG_TO_STDOUT=1 \
    OMNISCHED_LOG_DIR=/var/log/omnisched \
    OMNISCHED_SUPERVISOR_DIR=/run/omnisched \
    GRPC_PORT=50054 \
    OMNISCHED_HTTP_PORT=8054 \
    FLOWER_PORT=5555

EXPOSE 50054 8054 5555
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=3 CMD ["omnisched", "check"]
ENTRYPOINT ["tini", "--"]
CMD ["omnisched", "supervise"]

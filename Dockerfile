# The engine in one container. PostgreSQL and Redis come from outside
# (see compose.yaml); without DATABASE_URL / REDIS_URL it would start its own.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DEXENGINE_API__HOST=0.0.0.0 \
    DEXENGINE_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sim sim
COPY engine engine
COPY storage storage
COPY localservers localservers
COPY actors actors
COPY serve serve
COPY runtime runtime
COPY loadtest loadtest
COPY configs configs
RUN pip install --no-cache-dir . && useradd --create-home engine && mkdir -p /data && chown engine /data
USER engine
EXPOSE 8000 8265
# Ray's object store lives in /dev/shm: give the container enough (compose sets shm_size).
CMD ["dexengine", "up"]

# syntax=docker/dockerfile:1
# Two targets:
#   docker build --target server  -t lexicon-hub/registry .   (no torch)
#   docker build --target trainer -t lexicon-hub/trainer .    (torch + diffusers)
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY client ./client
COPY registry ./registry
COPY trainer_service ./trainer_service

FROM base AS server
RUN pip install -e '.[server]'
ENV LEXICON_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["lexicon-registry", "serve", "--host", "0.0.0.0", "--port", "8000"]

FROM base AS trainer
# The CUDA build of torch comes from the default index on a GPU host; pin it before diffusers.
ARG TORCH_VERSION=2.13.0
RUN pip install "torch==${TORCH_VERSION}" && pip install -e '.[trainer]'
ENV HF_HUB_OFFLINE=1
CMD ["lexicon-trainer", "--help"]

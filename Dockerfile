# The worker image of remote runs: zetta_utils installed as scripts/setup.sh installs it, with
# `zetta worker` as its entry point (a Kubernetes Deployment's `command` replaces it with the full
# `zetta worker --queue ...` line). Build and push it with scripts/build_image.py.
#
# Build arguments:
#   TORCH_VARIANT  cpu (default), or a CUDA build of torch for GPU worker groups, e.g. cu126
#                  (scripts/build_image.py --cuda); the torch version is setup.sh's pin either way.
#   PYTHON_VERSION 3.11 (the version the project is tested with)
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ARG TORCH_VARIANT=cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

# A C compiler for the optional fused blending loops (setup.py), removed once they are built.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/zetta_utils
RUN pip install --upgrade pip
# torch first and pinned, as in scripts/setup.sh; the extra index serves the CPU-only (or the
# chosen CUDA) build of that same version
RUN pip install --extra-index-url https://download.pytorch.org/whl/${TORCH_VARIANT} torch==2.13.0
COPY pyproject.toml setup.py README.md ./
COPY zetta_utils ./zetta_utils
RUN pip install ".[test]" \
    && apt-get purge -y --auto-remove gcc libc6-dev \
    && zetta --version

ENTRYPOINT ["zetta", "worker"]

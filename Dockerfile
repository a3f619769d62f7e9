# The service image: `statewriter serve` with the embedded state store in /data.
#
#   docker build -t statewriter .
#
# Runs as uid/gid 10001 (deploy/kubernetes sets the same in its securityContext) and works
# with a read-only root filesystem: it writes only to /data and /tmp.
# Listening on 0.0.0.0 requires an auth section: mount a config and name it with
# STATEWRITER_CONFIG or --config (docker-compose.yml and deploy/kubernetes do).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# git for the store and its smart HTTP (/git/state.git), ssh for ssh remotes, gpg and its
# agent for OpenPGP-signed commits (`signing: {format: openpgp}`; SSH signing needs no tool).
RUN apt-get update && apt-get install -y --no-install-recommends git openssh-client gpg gpg-agent \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app app
COPY gitops gitops
RUN pip install --no-cache-dir . && cd / && rm -rf /src \
    && groupadd --gid 10001 statewriter \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin statewriter \
    && mkdir /data && chown 10001:10001 /data
WORKDIR /
USER 10001:10001
ENV STATEWRITER_HOST=0.0.0.0 STATEWRITER_PORT=8080 STATEWRITER_DATA=/data
EXPOSE 8080
VOLUME /data
ENTRYPOINT ["statewriter", "serve"]

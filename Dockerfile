FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git openssh-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app app
COPY gitops gitops
RUN pip install --no-cache-dir . && useradd --uid 10001 --create-home statewriter \
    && mkdir /data && chown statewriter /data
USER statewriter
ENV STATEWRITER_HOST=0.0.0.0 STATEWRITER_PORT=8080 STATEWRITER_DATA=/data
EXPOSE 8080
VOLUME /data
# Listening on 0.0.0.0 requires an auth section: mount a config and set STATEWRITER_CONFIG.
ENTRYPOINT ["statewriter", "serve"]

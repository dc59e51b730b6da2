# Multi-stage build: dependencies from constraints.txt into a venv, then a slim non-root image.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE} AS build
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md constraints.txt /src/
COPY daemon /src/daemon
RUN pip install --no-cache-dir --disable-pip-version-check -c /src/constraints.txt /src

FROM ${BASE_IMAGE}
RUN groupadd --gid 10001 vedette \
 && useradd --uid 10001 --gid vedette --create-home --home-dir /home/vedette vedette \
 && mkdir -p /data && chown vedette:vedette /data
COPY --from=build /opt/venv /opt/venv
COPY config/ /config/
COPY watchlists/ /watchlists/
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 VEDETTE_CONFIG=/config/vedette.yaml \
    VEDETTE_LOG_FORMAT=json VEDETTE_HTTP_LISTEN=0.0.0.0:8080
USER vedette
WORKDIR /data
VOLUME ["/config", "/watchlists", "/data"]
EXPOSE 8080
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s CMD ["python3", "-c", \
  "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:8080/healthz', timeout=5)"]
ENTRYPOINT ["vedette"]
CMD ["run"]

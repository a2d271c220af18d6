# The otel-llmcost collector (`llmcost serve`): OTLP in on 4317 (gRPC) and 4318 (HTTP),
# /metrics, API, health and web page on 9464. The SQLite ledger lives on the /data volume;
# set LLMCOST_LEDGER_URL=postgresql://... to share a PostgreSQL ledger between replicas.
# Only collector/ is needed: the in-service package (otel_llmcost) runs in the user's services.

FROM python:3.11-slim AS build
WORKDIR /src
COPY collector/ ./collector/
# Wheels for the collector and every dependency, so the runtime stage needs no compiler or network.
RUN pip wheel --no-cache-dir --wheel-dir /wheels './collector[postgres]'

FROM python:3.11-slim
# Pango: WeasyPrint renders invoice PDFs with it (`llmcost invoice --format pdf`).
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin llmcost \
    && mkdir -p /data /etc/llmcost && chown llmcost /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels 'llmcost-collector[postgres]' \
    && rm -rf /wheels
ENV LLMCOST_LEDGER_URL=sqlite:////data/llmcost.db \
    PYTHONUNBUFFERED=1
USER llmcost
WORKDIR /data
VOLUME ["/data"]
EXPOSE 4317 4318 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/readyz', timeout=2)"]
ENTRYPOINT ["llmcost"]
# Listen on all interfaces: inside a container, loopback is unreachable from the other services.
CMD ["serve", "--host", "0.0.0.0"]

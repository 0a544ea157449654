# vigie: the scanner, the scheduler, the Celery workers and the web console
# (vigie serve, port 8080) share this image.
# The steps are those of scripts/setup.sh, which CI proves on every change.
FROM python:3.11-slim-bookworm

ARG DEBIAN_FRONTEND=noninteractive
# nmap for the port stage; pango and fonts for the PDF reports.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      nmap ca-certificates libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/vigie
COPY pyproject.toml README.md ./
COPY vigie ./vigie
RUN pip install --no-cache-dir . \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/vigie --shell /usr/sbin/nologin vigie

# Connect scans need no privilege. For SYN scans (scan.syn_scan = true) grant
# nmap only the raw-socket capability instead of running as root:
#   RUN apt-get install -y --no-install-recommends libcap2-bin \
#    && setcap cap_net_raw,cap_net_admin+eip /usr/lib/nmap/nmap
USER 10001
WORKDIR /var/lib/vigie
ENV VIGIE_DATABASE_URL=sqlite:////var/lib/vigie/vigie.db \
    PYTHONUNBUFFERED=1

EXPOSE 8080

HEALTHCHECK --interval=60s --timeout=10s --start-period=30s --retries=3 \
  CMD ["vigie", "health"]

ENTRYPOINT ["vigie"]
CMD ["schedule", "run"]

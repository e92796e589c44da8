# JobJoker in a container: the server, its supervisor and the jobs in one container, as one
# non-root user, the data dir on a volume. Not built by CI (it has no container engine); CI lints
# it with hadolint (tests/test_container.py). See docs/deploy.md, "In a container".
#
#   docker build -t jobjoker .
#   docker run -d --name jobjoker --hostname jobjoker -p 127.0.0.1:8080:8080 \
#       -e JOBJOKER_ADMIN_PASSWORD='choose-a-password' -v jobjoker-data:/var/lib/jobjoker jobjoker
FROM python:3.12-slim-bookworm

# tini is PID 1: it reaps every orphan (the supervisor is one: its launcher exits at once) and
# hands SIGTERM to the server, which stops without stopping the jobs. mariadb-client brings
# mariadb-dump, which `jobjoker backup` runs on MariaDB (compose.yaml's 10.11, the same
# release as Debian's client). Debian's version of the base image's release is the one wanted,
# whatever its patch level.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini mariadb-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 jobjoker \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/jobjoker \
        --shell /usr/sbin/nologin jobjoker \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/jobjoker

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    JOBJOKER_HOST=0.0.0.0 \
    JOBJOKER_PORT=8080 \
    JOBJOKER_DATA_DIR=/var/lib/jobjoker

WORKDIR /usr/src/jobjoker
COPY setup.py README.md ./
COPY jobjoker ./jobjoker
COPY handlers ./handlers
COPY static ./static
# The PostgreSQL driver too, so that one image serves SQLite, MariaDB/MySQL and PostgreSQL.
# This checkout's own code: setup.py bounds its dependencies' versions.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[postgresql]"

# The database (when SQLite), the secret key, the running jobs' spools and, by default, the
# workers: everything a restore needs (`jobjoker backup`).
VOLUME ["/var/lib/jobjoker"]
# By number: a host (or Kubernetes' runAsNonRoot) can check it without the image's passwd.
USER 10001:10001
WORKDIR /var/lib/jobjoker
EXPOSE 8080

# /health answers 200 while the database answers and the supervisor is connected, else 503.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=8).status != 200)"]

ENTRYPOINT ["/usr/bin/tini", "--", "jobjoker"]
CMD ["serve"]

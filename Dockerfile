# The Second Opinion Line service: `phoneline serve` by default; docker-compose.yml also runs
# `phoneline db upgrade` and `phoneline worker` from this image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY migrations ./migrations
COPY flows ./flows

# Installed in place (-e): the migrations and flows are read from /app beside the package.
RUN pip install -e . \
    && useradd --create-home --uid 10001 --user-group phoneline \
    && mkdir -p /app/var \
    && chown phoneline:phoneline /app/var

USER phoneline
EXPOSE 8000
CMD ["phoneline", "serve", "--host", "0.0.0.0", "--port", "8000"]

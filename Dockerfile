# One image for every trakr process; the command picks the process:
#   docker run trakr trakr-ein        docker run trakr trakr migrate
# Build from the repository root: docker build -t trakr .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 trakr \
    && useradd --system --uid 10001 --gid trakr --home-dir /app --no-create-home --shell /usr/sbin/nologin trakr \
    && mkdir -p /app /var/lib/trakr \
    && chown trakr:trakr /var/lib/trakr

WORKDIR /app

# Dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p services/trakr && touch services/trakr/__init__.py \
    && pip install . \
    && pip uninstall -y trakr \
    && rm -rf services build *.egg-info

COPY services ./services
COPY sql ./sql
# Editable on purpose: `trakr migrate` finds its migrations at <repo>/sql/migrations next to the
# package (trakr.migrate.MIGRATIONS_DIR), which only holds when the package runs from /app/services.
RUN pip install --no-deps -e . \
    && python -c "from trakr.migrate import migration_files; assert migration_files(), 'no migrations'" \
    && python -m compileall -q services

USER trakr
# Metrics: jet 9101, ein 9102, julia 9103, hermes 9104; spike API 9876; FCM emulator 9190.
EXPOSE 9101 9102 9103 9104 9876 9190
CMD ["trakr", "--help"]

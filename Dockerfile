# The bot's image: `docker build -t regulars .` (README: "Running at scale").
# Two stages: the builder makes /opt/regulars (the code, its virtual environment at the
# lock's versions, the compiled translations) the way `make install` does; the runtime
# stage copies that folder onto a clean Python and runs `regulars run` as a user without
# rights, with the SQLite database (when there is no DATABASE_URL) in the /data volume.
# tests/test_deploy.py lints this file (hadolint) and runs its steps against the checkout.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/regulars
# The dependencies first, so a change of the code alone reuses this layer: the project's
# own (pyproject.toml) and asyncpg for PostgreSQL, each at its version in requirements.lock;
# the lock's development tools (pytest, mypy, ruff, hadolint) stay out of the image.
COPY pyproject.toml requirements.lock ./
RUN python -m venv .venv \
    && .venv/bin/python -c "import tomllib; project = tomllib.load(open('pyproject.toml', 'rb'))['project']; print(*project['dependencies'], *project['optional-dependencies']['postgres'], sep='\n')" > runtime-requirements.txt \
    && .venv/bin/python -m pip install -c requirements.lock setuptools wheel \
    && .venv/bin/python -m pip install -c requirements.lock -r runtime-requirements.txt
COPY README.md business.example.toml ./
COPY bot ./bot
COPY domain ./domain
COPY handlers ./handlers
COPY scheduler ./scheduler
COPY storage ./storage
COPY testing ./testing
COPY locales ./locales
# As the Makefile does: the project itself (editable, so bot/i18n.py finds locales/ beside
# it), the .mo catalogs from the .po files, and the bytecode made once here.
RUN .venv/bin/python -m pip install --no-deps --no-build-isolation -e . \
    && for po in locales/*/LC_MESSAGES/regulars.po; do .venv/bin/pybabel compile --domain regulars -i "$po" -o "${po%.po}.mo"; done \
    && .venv/bin/python -m compileall -q bot domain handlers scheduler storage testing

FROM ${PYTHON_IMAGE}
# The settings a container needs different from a checkout's (.env.example has them all):
# listen on every interface of the container, keep the SQLite file in the volume.
ENV PATH=/opt/regulars/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    DATABASE_URL=sqlite+aiosqlite:////data/regulars.db \
    BUSINESS_CONFIG=/config/business.toml \
    WEB_HOST=0.0.0.0 \
    WEB_PORT=8080
RUN groupadd --system --gid 10001 regulars \
    && useradd --system --uid 10001 --gid regulars --home-dir /data --shell /usr/sbin/nologin regulars \
    && mkdir -p /data /config \
    && chown regulars:regulars /data
# The code and its environment stay root's, read-only to the bot.
COPY --from=builder /opt/regulars /opt/regulars
WORKDIR /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
# `regulars run` is PID 1 (exec form, no shell in between) and handles SIGTERM itself: it
# stops taking updates, lets the turns and the send in flight finish (10 s at most) and
# exits 0, so `docker stop`'s default 10 s grace is enough; give `--stop-timeout 30` to be safe.
STOPSIGNAL SIGTERM
# 200 from /healthz when the database answers and the scheduler ticked in the last 3 minutes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WEB_PORT', '8080') + '/healthz', timeout=4)"]
ENTRYPOINT ["/opt/regulars/.venv/bin/regulars"]
CMD ["run"]

# keybot: `keybot serve` as an unprivileged user, with a health check on /healthz.
#   docker build -t keybot .
#   docker run --env-file keybot.env -p 3000:3000 keybot
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY storage ./storage
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 keybot
COPY --from=build /install /usr/local
USER keybot
WORKDIR /home/keybot
ENV PORT=3000 \
    DATABASE_URL=sqlite+aiosqlite:////home/keybot/keybot.db \
    PYTHONUNBUFFERED=1
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=2)"
ENTRYPOINT ["keybot"]
CMD ["serve"]

# Build: compile the service into one executable. The Debian-based Bun image, not the Alpine one,
# so the executable links against glibc like the runtime image below.
FROM oven/bun:1.4.5 AS build
WORKDIR /app
COPY package.json bun.lock ./
# The changes package.json's patchedDependencies make to PGlite and postgres.js.
COPY patches ./patches
RUN bun install --frozen-lockfile
COPY tsconfig.json ./
COPY drizzle ./drizzle
COPY src ./src
# The --version run fails the build early if the executable cannot start on this platform.
RUN bun run build && ./dist/todo-api --version

# Run: the executable alone (it embeds PGlite and the migrations) on a slim glibc image. Slim
# rather than distroless so that bash can probe /health for HEALTHCHECK without curl.
FROM debian:bookworm-slim
RUN useradd --user-group --uid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin todo \
	&& mkdir /data \
	&& chown todo:todo /data
COPY --from=build /app/dist/todo-api /usr/local/bin/todo-api
# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
# The embedded database lives on the volume; the volume starts out owned by the user above.
# With DATABASE_URL set, /data stays empty: no -v is needed, though Docker still makes an
# anonymous volume for it.
ENV DATA_DIR=/data
VOLUME /data
EXPOSE 8000
# Liveness only (/health): /ready turns 503 while Postgres is down, and a restart would not help.
# bash's /dev/tcp sends the request; PORT follows the container's setting.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
	CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8000} && printf 'GET /health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r -t 4 status <&3 && [[ $status == *' 200 '* ]]"]
# PID 1 is the server itself: it handles SIGTERM (docker stop) and finishes requests in flight.
# Arguments go to it: `docker run IMAGE token --sub alice` prints a token.
ENTRYPOINT ["/usr/local/bin/todo-api"]

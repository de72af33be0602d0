# syntax=docker/dockerfile:1
#
# One image for both Taskhub processes (docker-compose.yml runs the whole stack):
#   api (default):  docker run -p 3000:3000 -e JWT_SECRET=... -e DATABASE_URL=... taskhub
#   worker:         docker run -p 3001:3001 -e JWT_SECRET=... -e RABBITMQ_URL=... taskhub \
#                     node dist/apps/worker/apps/worker/src/main.js
# Configuration is environment variables only; libs/config/src/config.ts lists them all.
# NODE_ENV=production is set here, so JWT_SECRET (32+ characters) is required.
#
# Node 24 (Active LTS until October 2026, maintained until April 2028), pinned to the major: each
# build takes its latest patch release. package.json's engines say which Nodes the code runs on.

# --- build: every dependency, then compile both apps into dist/ ---------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# --- prod-deps: production dependencies only (cached apart from source changes) -----------------
# No install scripts: no production dependency needs one to run (the only ones are a telemetry
# ping and @swc/core's binary check, and swc is not used at run time).
FROM node:24-bookworm-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime: dist/, production node_modules and package.json; nothing else ---------------------
FROM node:24-bookworm-slim AS runtime
# tini as PID 1: forwards SIGTERM/SIGINT to node (whose handler drains, then exits 0) and reaps
# zombies. Node as PID 1 would get no default signal handling from the kernel.
# The app's own user and group, taskhub (10001), with no home and no login shell: a UID no base
# image or host account is likely to hold (the image's `node` user is 1000, usually a host's
# first account), by number so that Kubernetes' runAsNonRoot can verify it (k8s/ says
# runAsUser 10001).
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --gid 10001 taskhub \
  && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin taskhub
ENV NODE_ENV=production
# The runtime flags of scripts/runtime.js (a larger young generation: see the reasons there).
ENV NODE_OPTIONS=--max-semi-space-size=64
WORKDIR /app
# Owned by root and read-only to the app user: the process cannot rewrite its own code.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/package.json ./package.json
USER 10001:10001
# PORT (api) and WORKER_PORT (worker).
EXPOSE 3000 3001
# Liveness without curl: 200 from /health/live on PORT (api) or WORKER_PORT (worker), whichever
# this container runs. Readiness (/health/ready) belongs to the orchestrator: see
# docker-compose.yml. The start period covers the api's migrations at start.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const http = require('node:http'); const ports = [...new Set([process.env.PORT || '3000', process.env.WORKER_PORT || '3001'])]; let pending = ports.length; for (const port of ports) { let done = false; const end = (ok) => { if (done) return; done = true; if (ok) process.exit(0); if (--pending === 0) process.exit(1); }; http.get({ host: '127.0.0.1', port, path: '/health/live', timeout: 4000 }, (res) => { res.resume(); end(res.statusCode === 200); }).on('timeout', function () { this.destroy(); }).on('error', () => end(false)); }"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/apps/api/apps/api/src/main.js"]

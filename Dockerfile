# syntax=docker/dockerfile:1
# changepager container image. Build: docker build -t changepager .
# Run:   docker run -e CHANGEPAGER_TOKEN=... -p 8080:8080 -v changepager-data:/data changepager
# Without CHANGEPAGER_TOKEN (or auth.tokens in a mounted config) the container stops at start-up with a message
# saying how to set one (config/docker.yaml sets auth.require_token); CHANGEPAGER_ALLOW_OPEN=1 runs it without
# a token, open to anyone who can reach it (a lab only). docs/docker.md has the details.

# Node 26 is the Active LTS line (since 2026-10-28; 24 is in maintenance); better-sqlite3 12.x supports 20 to 26.
ARG NODE_IMAGE=node:26-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 falls back to compiling from source (node-gyp) when no prebuilt binary can be downloaded.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    CHANGEPAGER_CONFIG=/app/config/docker.yaml
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
# The database lives on the volume; the node user (uid 1000) must own it before VOLUME freezes it.
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 8080
# The healthcheck loads the same config and environment as the service (CHANGEPAGER_CONFIG, PORT, HOST, the
# tokens), so it asks /healthz on the port the service really uses, and fails if the service is not reachable
# from outside the container. Slim images have no curl: it is Node's own fetch.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "dist/cli.js", "healthcheck"]
# Exec form: node is PID 1 and receives SIGTERM itself; changepager finishes in-flight requests and deliveries.
# A young generation of 8 MB per semi-space, as `npm start` runs it: docs/operations.md#memory says why.
CMD ["node", "--max-semi-space-size=8", "dist/cli.js", "serve"]

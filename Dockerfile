# syntax=docker/dockerfile:1
# changepager container image. Build: docker build -t changepager .
# Run:   docker run -e CHANGEPAGER_TOKEN=... -p 8080:8080 -v changepager-data:/data changepager
# Without CHANGEPAGER_TOKEN (or auth.tokens in a mounted config) the service binds 127.0.0.1 inside the
# container and cannot be reached from outside it.

# Node 24 is the Active LTS line; better-sqlite3 12.x supports Node 20 to 26.
ARG NODE_IMAGE=node:24-bookworm-slim

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
# Slim images have no curl: ask Node's own fetch. 127.0.0.1 answers whether or not a token is configured.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself; changepager finishes in-flight requests and deliveries.
CMD ["node", "dist/cli.js", "serve"]

# syntax=docker/dockerfile:1
# The federation server and the web app it serves, as one image (deploy/k8s/ runs it; docs/deploy.md).
#   docker build -t fedgan-crc .
#   docker run --rm -p 8080:8080 fedgan-crc        # demo tokens and join links are printed in the log
# The same image runs the Node simulation (cli/, with its Node helpers in node/), as the simulate overlay's Job does.
# For reproducible builds pin the base image by digest: --build-arg NODE_IMAGE=node:20-bookworm-slim@sha256:…
ARG NODE_IMAGE=node:20-bookworm-slim

# 1. build: all dependencies, then the web app (vite) into dist/.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# 2. deps: production dependencies only (tsx included: the server runs its TypeScript through it).
#    onnxruntime-node (optional, ~290 MB of native binaries for every platform) only speeds up the quality
#    report's feature networks (npm run evaluate), which the image does not run: it is removed. The base
#    image's npm 10 does not read package.json's allowScripts, so its install script runs in both stages
#    and tries to fetch CUDA binaries from outside the npm registry; where it cannot (npm run test:container
#    builds with the registry only) npm drops the optional package without a word. Either way the image
#    holds none of it, and nothing in it needs it.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && rm -rf node_modules/onnxruntime-node && npm cache clean --force

# 3. runtime: slim Node 20, production dependencies, the server's sources, the built web app; non-root.
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="fedgan-crc" \
      org.opencontainers.image.description="Federated conditional-GAN server for colorectal-cancer H&E tiles, with its web app"
# npm, npx, corepack and yarn are not needed at run time: remove them (less to patch, less to exploit).
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-* \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg \
    && mkdir -p /var/lib/fedgan/state \
    && chown 1000:1000 /var/lib/fedgan/state
WORKDIR /app
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0 \
    STATE_DIR=/var/lib/fedgan/state
# Owned by root and read-only for the server's user: the code cannot be changed by the process running it.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY shared ./shared
COPY server ./server
COPY cli ./cli
COPY node ./node
COPY --from=build /app/dist ./dist
# The "node" user of the Node image, by number so that Kubernetes can verify runAsNonRoot.
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--import", "tsx", "server/main.ts"]

# syntax=docker/dockerfile:1
# keyrot as a container image, for the Kubernetes CronJob in deploy/kubernetes/ (see its README).
#   docker build -t keyrot:0.1.0 .
#   docker run --rm keyrot:0.1.0 --help
# No secret is baked in: the new key, the Admin API token and the webhook URL come from the
# environment at run time (Kubernetes Secrets), the inventory from a mounted ConfigMap, the
# cluster credentials from the pod's service account.

# Node 24: keyrot runs its TypeScript sources directly with Node's built-in type stripping
# (bin/keyrot.js), so there is no build step and the base image's own Node is the runtime. The
# `node` devDependency (which pins Node 24 for `npm run`/`npx` in a clone) is not installed here.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- dependencies: production only -------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev: no vitest, typescript, fast-check or the `node` pin.
# --ignore-scripts: `npm ci` would run the `prepare` script (scripts/sandbox.mjs), which seeds a
# local sandbox with a throw-away key, which has no place in an image; no production dependency
# needs an install script (protobufjs's postinstall only prints a notice).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime -------------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="keyrot" \
      org.opencontainers.image.description="Rotate an API key everywhere it lives, together: write, verify, then revoke." \
      org.opencontainers.image.licenses="MIT"
# A fixed non-root uid/gid (10001, above any distribution's system range) so that Kubernetes'
# runAsNonRoot can verify it numerically and the manifests can name it.
RUN groupadd --system --gid 10001 keyrot \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/keyrot --create-home --shell /usr/sbin/nologin keyrot
WORKDIR /app
# Only what runs: the bin, the sources, the package manifest (type: module) and the production
# node_modules. Root owns the files (the process cannot modify its own code).
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY src ./src
COPY emulators ./emulators
COPY scripts ./scripts
# NODE_ENV=production: no dev-only behaviour in dependencies. KEYROT_STATE_DIR: a local state
# directory, if one is used (state: local), goes to the writable /tmp (an emptyDir in the pod,
# whose root filesystem is read-only); Node's compile cache also lands in /tmp.
ENV NODE_ENV=production \
    KEYROT_STATE_DIR=/tmp/keyrot
USER 10001:10001
ENTRYPOINT ["node", "/app/bin/keyrot.js"]
CMD ["--help"]

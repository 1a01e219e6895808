# keyrot as a container image, for the Kubernetes CronJob in deploy/kubernetes/ (see its README).
#   docker build -t keyrot:0.1.0 .
#   docker run --rm keyrot:0.1.0 --help
# No secret is baked in: the new key, the Admin API token and the webhook URL come from the
# environment at run time (Kubernetes Secrets), the inventory from a mounted ConfigMap, the
# cluster credentials from the pod's service account.
#
# The image holds the package bundled into JavaScript (dist/, as `npm pack` builds it, with the
# emulators `keyrot demo` needs) and the production dependencies exactly as package-lock.json pins
# them. Any image with Node >= 22.12, npm and /bin/sh can be the base (NODE_IMAGE); .ci/run builds
# one from the pinned Node binary where none can be pulled (scripts/node-base-image.mjs).
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: compile, then keep the production dependencies only -------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY tools/dev-node/package.json ./tools/dev-node/
# --ignore-scripts: no dependency needs an install script (protobufjs's postinstall only prints a
# notice), and the `prepare` script would seed a local sandbox with a throw-away key.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.mjs ./scripts/
COPY src ./src
COPY emulators ./emulators
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime -------------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="keyrot" \
      org.opencontainers.image.description="Rotate an API key everywhere it lives, together: write, verify, then revoke." \
      org.opencontainers.image.licenses="MIT"
# A fixed non-root uid/gid (10001, above any distribution's system range) so that Kubernetes'
# runAsNonRoot can verify it numerically and the manifests can name it; a passwd entry so the
# audit log names the user. Its home is /tmp: the root filesystem is meant to be read-only.
RUN echo 'keyrot:x:10001:10001:keyrot:/tmp:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'keyrot:x:10001:' >> /etc/group
WORKDIR /app
# Only what runs: the bin, the compiled code, the manifest (type: module), the licence and the
# production node_modules. Root owns the files (the process cannot modify its own code).
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json README.md LICENSE ./
COPY bin/keyrot.js ./bin/keyrot.js
# NODE_ENV=production: no dev-only behaviour in dependencies. KEYROT_STATE_DIR: a local state
# directory, if one is used (state: local), goes to the writable /tmp (an emptyDir in the pod,
# whose root filesystem is read-only); Node's compile cache and the demo's work directory too.
ENV NODE_ENV=production \
    KEYROT_STATE_DIR=/tmp/keyrot
USER 10001:10001
ENTRYPOINT ["node", "/app/bin/keyrot.js"]
CMD ["--help"]

#!/usr/bin/env bash
# Builds the container image (Dockerfile) and checks it: `keyrot --help` and `keyrot demo` run in
# it, as uid 10001, with a read-only root filesystem and no network (`docker run --read-only
# --tmpfs /tmp --network none`). Run by .ci/run after the tests, against the Engine they started.
#   scripts/image-check.sh            DOCKER_HOST picks the Engine
# NODE_IMAGE: the base; when it is unset and node:24-bookworm-slim cannot be had (nothing can be
# pulled here), a base is built from the pinned Node binary (scripts/node-base-image.mjs). The
# build's `npm ci` needs the npm registry: `--network host` (a private Engine may have no bridge).
set -euo pipefail
cd "$(dirname "$0")/.."
tag="keyrot-check:$(date +%s)-$$"
fail() { echo "image check FAILED: $*" >&2; exit 1; }

if ! docker version >/dev/null 2>&1; then
  echo "image check skipped: no Docker Engine at ${DOCKER_HOST:-the default socket}" >&2
  [ "${CI:-}" = true ] && exit 1 || exit 0
fi
base="${NODE_IMAGE:-node:24-bookworm-slim}"
if ! docker image inspect "$base" >/dev/null 2>&1 && ! timeout 120 docker pull -q "$base" >/dev/null 2>&1; then
  [ -n "${NODE_IMAGE:-}" ] && fail "base image $base is not available"
  echo "image check: $base cannot be pulled here; building a base from the pinned Node instead" >&2
  base="$(node scripts/node-base-image.mjs)"
fi
echo "image check: building $tag on $base" >&2
docker build -q --network host --build-arg "NODE_IMAGE=$base" -t "$tag" . >/dev/null
trap 'docker image rm -f "$tag" >/dev/null 2>&1 || true' EXIT

run() { docker run --rm --network none --read-only --tmpfs /tmp "$@"; }
uid="$(run --entrypoint node "$tag" -e 'process.stdout.write(`${process.getuid()}:${process.getgid()}`)')"
[ "$uid" = "10001:10001" ] || fail "runs as $uid, expected 10001:10001"
help="$(run "$tag" --help)" || fail "keyrot --help exited non-zero"
grep -q 'Usage: keyrot' <<<"$help" || fail "keyrot --help: $help"
demo="$(run "$tag" demo 2>&1)" || fail "keyrot demo exited non-zero: $demo"
grep -q 'Demo complete' <<<"$demo" || fail "keyrot demo did not complete: $demo"
if run --entrypoint node "$tag" -e 'require("fs").writeFileSync("/app/x", "")' 2>/dev/null; then fail "the root filesystem is writable"; fi
[ -z "$(run --entrypoint node "$tag" -e 'process.stdout.write(require("fs").readdirSync("/app").filter((f) => f === "src").join())')" ] || fail "the image holds the TypeScript sources"
echo "image check: ok ($tag: --help, demo, uid 10001, read-only root filesystem, bundled code)"

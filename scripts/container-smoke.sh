#!/usr/bin/env bash
# Build the Vedette image with podman (no Docker engine needed) and smoke-test it:
# `check` and `demo` offline, then `run` until its healthcheck passes, then a SIGTERM stop that
# must exit 0 in under 9 s. Safe to rerun; removes only its own containers. See CONTAINER.md.
# Prints "SMOKE PASS" or "SMOKE FAIL: [stage] reason".
set -uo pipefail
cd "$(dirname "$0")/.."

BASE=localhost/python-base:bookworm
IMAGE=localhost/vedette:dev
NAME=vedette-smoke-$$
fail() { echo "SMOKE FAIL: [$1] $2"; podman rm -f "$NAME" >/dev/null 2>&1; exit 1; }

for tool in podman buildah runc mmdebstrap; do
  command -v "$tool" >/dev/null || fail tools "$tool not installed (apt-get install podman buildah runc mmdebstrap)"
done

# 1. Base image, rebuilt only when the recipe, apt sources or CAs change.
SOURCES=/etc/apt/sources.list.d/debian.sources
[ -f "$SOURCES" ] || SOURCES=/etc/apt/sources.list
RECIPE_HASH=$( { echo recipe-v1; cat "$SOURCES"; cat /usr/local/share/ca-certificates/*.crt 2>/dev/null; } | sha256sum | cut -c1-16)
HAVE_HASH=$(podman image inspect --format '{{index .Labels "vedette.base-recipe"}}' "$BASE" 2>/dev/null || true)
if [ "$HAVE_HASH" != "$RECIPE_HASH" ]; then
  echo "building base image $BASE"
  mmdebstrap --variant=minbase --mode=root --format=tar \
    --include=python3,python3-venv,python3-pip,ca-certificates,python-is-python3 \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='cp -L /usr/local/share/ca-certificates/*.crt "$1"/usr/local/share/ca-certificates/ || true; chroot "$1" update-ca-certificates' \
    bookworm - "$SOURCES" \
  | podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
      --change "LABEL vedette.base-recipe=$RECIPE_HASH" - "$BASE" >/dev/null \
  || fail base "could not build the base image"
fi

# 2. Build.
podman build --isolation chroot --network host --format docker --pull=never \
  --build-arg BASE_IMAGE="$BASE" -t "$IMAGE" . || fail build "podman build failed"
podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" | grep -q healthz \
  || fail build "image has no HEALTHCHECK"

# 3. Run.
N=$(ulimit -Hn); { [ "$N" = unlimited ] || [ "$N" -gt 65536 ]; } && N=65536
OPTS=(--runtime runc --ulimit "nofile=$N:$N" --ulimit nproc=16384:16384)
podman run "${OPTS[@]}" --rm --no-healthcheck --network none "$IMAGE" check || fail check "vedette check failed"
podman run "${OPTS[@]}" --rm --no-healthcheck --network none "$IMAGE" demo | tail -4 || fail demo "vedette demo failed"
podman run "${OPTS[@]}" --rm --no-healthcheck --network none "$IMAGE" demo | grep -q "first poll" \
  || fail demo "demo printed no summary"

podman run "${OPTS[@]}" -d --name "$NAME" --network none \
  -v "$PWD/config:/config:ro" -v "$PWD/watchlists:/watchlists:ro" "$IMAGE" >/dev/null \
  || fail run "container did not start"
deadline=$((SECONDS + 60))
until podman healthcheck run "$NAME" >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || fail health "not healthy within 60 s: $(podman logs --tail 5 "$NAME" 2>&1)"
  sleep 1
done
echo "healthy after $((SECONDS - deadline + 60)) s"
start=$(date +%s.%N)
podman stop -t 10 "$NAME" >/dev/null || fail stop "podman stop failed"
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
podman rm "$NAME" >/dev/null
[ "$code" = 0 ] || fail stop "exit code $code after SIGTERM"
awk "BEGIN {exit !($elapsed < 9)}" || fail stop "stop took ${elapsed}s (limit 9 s)"
echo "stopped with exit 0 in ${elapsed}s"
echo "SMOKE PASS"

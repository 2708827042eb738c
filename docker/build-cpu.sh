#!/usr/bin/env bash
# Build pointsd:cpu with podman from docker/Dockerfile: the CUDA image's recipe on the local Debian
# base (build-local-base.sh) with the CPU torch wheel from a local folder, no registry needed.
#   docker/build-cpu.sh [CONTEXT]        (CONTEXT: the checkout to build; default: this one)
# Env: IMAGE (pointsd:cpu), BASE_IMAGE (localhost/debian:bookworm), TORCH_VERSION (2.13.0+cpu),
# TORCH_WHEELS (a folder holding torch-$TORCH_VERSION-*.whl; default: pip's find-links folder).
# POINTSD_COMMIT (recorded in every metrics file; default: the context's git HEAD).
# Prints the build time and the image size.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
context=$(cd "${1:-$here/..}" && pwd)
IMAGE=${IMAGE:-pointsd:cpu}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian:bookworm}
TORCH_VERSION=${TORCH_VERSION:-2.13.0+cpu}
TORCH_WHEELS=${TORCH_WHEELS:-$(pip config get global.find-links 2>/dev/null || echo "${PIP_FIND_LINKS:-}")}
if ! compgen -G "${TORCH_WHEELS:-/nonexistent}/torch-${TORCH_VERSION}-*.whl" >/dev/null; then
    echo "build-cpu.sh: no torch-${TORCH_VERSION} wheel in TORCH_WHEELS='${TORCH_WHEELS}'" >&2
    exit 1
fi
commit=${POINTSD_COMMIT:-$(git -C "$context" rev-parse HEAD 2>/dev/null || echo unknown)}

BASE_IMAGE=$BASE_IMAGE "$here/build-local-base.sh"
start=$SECONDS
podman build --pull=never -f "$context/docker/Dockerfile" -t "$IMAGE" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg TORCH_VERSION="$TORCH_VERSION" \
    --build-arg TORCH_INDEX_URL=https://pypi.org/simple \
    --build-arg POINTSD_COMMIT="$commit" \
    --build-context torch-wheels="$TORCH_WHEELS" \
    "$context"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "built $IMAGE in $((SECONDS - start)) s; image size $((size / 1000000)) MB"

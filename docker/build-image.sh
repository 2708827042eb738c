#!/usr/bin/env bash
# Build pointsd:cpu or pointsd:cuda with podman from docker/Dockerfile on the local Debian base
# (build-local-base.sh): no container registry needed.
#   docker/build-image.sh cpu|cuda [CONTEXT]     (CONTEXT: the checkout to build; default: this one)
# cpu:  the CPU torch wheel from a local folder, requirements/cpu.lock, no compiler (make image-cpu;
#       the container smoke test builds it).
# cuda: PyPI's torch (a CUDA build) with its CUDA wheels, requirements/cuda.lock, gcc for Triton
#       (make image-cuda; several GB from PyPI).
# Env: IMAGE (pointsd:VARIANT), BASE_IMAGE (localhost/debian:bookworm), TORCH_WHEELS (cpu: a folder
# holding torch-<version>+cpu-*.whl; default: pip's find-links folder), POINTSD_COMMIT (recorded in
# every metrics file; default: the context's git HEAD). Prints the build time and the image size.
set -euo pipefail

variant=${1:?usage: docker/build-image.sh cpu|cuda [CONTEXT]}
here=$(cd "$(dirname "$0")" && pwd)
context=$(cd "${2:-$here/..}" && pwd)
IMAGE=${IMAGE:-pointsd:$variant}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian:bookworm}
torch=$(sed -n 's/^torch==//p' "$context/constraints.txt")
commit=${POINTSD_COMMIT:-$(git -C "$context" rev-parse HEAD 2>/dev/null || echo unknown)}
args=(--build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg POINTSD_COMMIT="$commit")
case "$variant" in
    cpu)
        TORCH_WHEELS=${TORCH_WHEELS:-$(pip config get global.find-links 2>/dev/null || echo "${PIP_FIND_LINKS:-}")}
        if ! compgen -G "${TORCH_WHEELS:-/nonexistent}/torch-${torch}+cpu-*.whl" >/dev/null; then
            echo "build-image.sh: no torch-${torch}+cpu wheel in TORCH_WHEELS='${TORCH_WHEELS}'" >&2
            exit 1
        fi
        args+=(--build-arg TORCH_VERSION="${torch}+cpu" --build-arg LOCK=cpu.lock --build-arg APT_COMPILER=
               --build-context torch-wheels="$TORCH_WHEELS") ;;
    cuda)
        args+=(--build-arg TORCH_VERSION="$torch" --build-arg LOCK=cuda.lock) ;;
    *)
        echo "build-image.sh: variant must be cpu or cuda, not '$variant'" >&2
        exit 2 ;;
esac

BASE_IMAGE=$BASE_IMAGE "$here/build-local-base.sh"
start=$SECONDS
podman build --pull=never -f "$context/docker/Dockerfile" -t "$IMAGE" "${args[@]}" "$context"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "built $IMAGE in $((SECONDS - start)) s; image size $((size / 1000000)) MB"

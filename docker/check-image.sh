#!/usr/bin/env bash
# Run the embedded default's whole DAG inside an image as uid 1000 with the network off, only a
# results folder mounted (what `make image-cuda` does after building; no GPU needed: the CUDA image
# computes on the CPU when none is given). Prints the time and the table.
#   docker/check-image.sh [IMAGE] [RESULTS]     (default: localhost/pointsd:cuda, a new temporary folder)
set -euo pipefail
IMAGE=${1:-localhost/pointsd:cuda}
out=${2:-$(mktemp -d /var/tmp/pointsd-check.XXXXXX)}
mkdir -p "$out"
chown 1000:1000 "$out"
start=$SECONDS
podman run --rm --user 1000:1000 --network none -v "$out":/results "$IMAGE" \
    snakemake results/table.md --snakefile /opt/pointsd/Snakefile --configfile /opt/pointsd/params.yaml \
    --directory /results --cores 2 >"$out/snakemake.log" 2>&1 \
    || { tail -n 30 "$out/snakemake.log" >&2; exit 1; }
echo "embedded DAG in $IMAGE: $((SECONDS - start)) s; results in $out"
cat "$out/results/table.md"

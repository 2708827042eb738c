#!/usr/bin/env bash
# Make the local Debian base image the CPU variant builds on, when no registry can be reached:
# a minbase bookworm from this host's apt mirror (debootstrap), with the host's CA bundle so that
# apt and pip work over HTTPS during `podman build`. Imported as $BASE_IMAGE; kept when it exists
# already (REBUILD_BASE=1 makes it again). Needs root, podman and debootstrap (podman-host.sh).
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-localhost/debian:bookworm}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
if podman image exists "$BASE_IMAGE" && [ "${REBUILD_BASE:-0}" != 1 ]; then
    echo "base image $BASE_IMAGE exists: kept"
    exit 0
fi
mirror=${DEBIAN_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -oE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' | head -n 1 | awk '{print $2}' || true)}
mirror=${mirror:-http://deb.debian.org/debian}
root=$(mktemp -d /var/tmp/pointsd-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
start=$SECONDS
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
install -D -m 0644 "$CA_BUNDLE" "$root/usr/local/share/ca-bundle/ca-bundle.crt"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
ca=/usr/local/share/ca-bundle/ca-bundle.crt
tar -C "$root" -c . | podman import \
    --change "ENV SSL_CERT_FILE=$ca" --change "ENV PIP_CERT=$ca" --change "ENV REQUESTS_CA_BUNDLE=$ca" \
    --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
echo "base image $BASE_IMAGE from $mirror in $((SECONDS - start)) s"

#!/usr/bin/env bash
# Prepare a Debian host (as root) to build and run the image with podman, no registry needed:
# podman + runc + debootstrap from apt, and the two container settings this kind of machine needs
# (crun refuses its cgroup layout; the default nofile ulimit of 1048576 cannot be set here).
# Idempotent; an existing /etc/containers/containers.conf is left alone.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "podman-host.sh: needs root (apt-get, /etc/containers)" >&2
    exit 1
fi
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi
conf=/etc/containers/containers.conf
if [ ! -e "$conf" ]; then
    mkdir -p /etc/containers
    cat >"$conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
fi
podman --version

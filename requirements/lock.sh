#!/usr/bin/env bash
# Regenerate the three locks from pyproject.toml with pip-tools (`make lock`). Every Python package
# but torch is pinned to one exact version; torch's version is constraints.txt's.
#   cuda.lock  the CUDA image: [pipeline] + PyPI's torch (a CUDA build) and its CUDA wheels and Triton
#   dev.lock   `make install`, CI: [dev]                 (with the CPU torch wheel's dependencies)
#   cpu.lock   the CPU image: [pipeline]                 (with the CPU torch wheel's dependencies)
# cuda.lock is resolved first, from PyPI alone; the other two are constrained by it, so a package that
# appears in several locks has the same version in each (tests/test_lock.py checks it).
# The CPU locks need a source of the CPU torch wheel: PIP_FIND_LINKS (this team's machines have one)
# or PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu. The script fails if a CPU lock would
# hold CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP_TOOLS=pip-tools==7.7.0
tool=$(mktemp -d)
trap 'rm -rf "$tool"' EXIT
python3 -m venv "$tool/venv"
"$tool/venv/bin/pip" install -q "$PIP_TOOLS"
compile() {  # compile OUT EXTRA [pip-compile options...]
    local out=$1 extra=$2
    shift 2
    "$tool/venv/bin/pip-compile" -q --extra "$extra" --unsafe-package torch --unsafe-package pointsd --strip-extras --no-header \
        --no-emit-index-url --no-emit-find-links --rebuild -c constraints.txt "$@" -o "requirements/$out" \
        pyproject.toml "$tool/torch.in"
    echo "requirements/$out: $(grep -c '==' "requirements/$out") packages"
}
echo torch >"$tool/torch.in"  # resolve torch's own dependencies too (torch itself is left out: --unsafe-package)
# (pointsd too: [dev] names pointsd[gpu,pipeline], which pip-compile would write as `pointsd @ file://...`)
env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null \
    bash -c "$(declare -f compile); tool=$tool; compile cuda.lock pipeline"
compile dev.lock dev -c requirements/cuda.lock
compile cpu.lock pipeline -c requirements/cuda.lock
rm -rf build ./*.egg-info  # what pip-compile's metadata build of the project left
if grep -lE '^(cuda-toolkit|nvidia-cuda-runtime)==' requirements/dev.lock requirements/cpu.lock; then
    echo "lock.sh: a CPU lock holds CUDA packages: no CPU torch wheel was found (see the header)" >&2
    exit 1
fi

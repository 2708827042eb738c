# The two commands of the README, and the pipeline's everyday targets.
#   make run    install, then run the whole DAG on the embedded default → results/table.md
#   make test   install, then run the test suite (what CI runs: .ci/run)
PYTHON ?= python
LOCK := requirements/dev.lock

.PHONY: install lock run test report dvc.yaml dvc-repro dvc-paper paper lint image-cpu image-cuda

# Every version comes from the lock: torch (constraints.txt's version) with its dependencies held to
# the lock's, then the lock itself and the project with nothing left to resolve (--no-deps).
install:
	$(PYTHON) -m pip install -c constraints.txt -c $(LOCK) torch
	$(PYTHON) -m pip install --no-deps -r $(LOCK) -e .

# Regenerate requirements/{cuda,dev,cpu}.lock from pyproject.toml (pip-tools; today's versions).
lock:
	requirements/lock.sh

run: install
	snakemake --cores all results/table.md

# A run that collects no test fails (pytest exits 5), like any other failure.
test: install
	$(PYTHON) -m pytest tests

report:
	snakemake --report report.html

paper:
	snakemake --cores all results/table.md --config profile=paper

# dvc.yaml is generated from workflow/stages.yaml and params.yaml (never edited by hand). The committed
# file is the default profile with the real ModelNet10 present; these targets regenerate it for the
# params and data at hand first, so `dvc repro` runs exactly what Snakemake runs.
dvc.yaml:
	$(PYTHON) workflow/stage_table.py dvc

dvc-repro: dvc.yaml
	dvc repro

# The paper profile: dvc.yaml for its DAG (no render, synthetic data or tiny SD: its paths point at
# real assets), then an experiment with the profile's values set as `dvc exp run -S` parameters.
dvc-paper:
	$(PYTHON) workflow/stage_table.py dvc --profile paper
	dvc exp run $$($(PYTHON) workflow/pipeline_params.py dvc-set paper)

lint:
	snakemake --lint
	hadolint docker/Dockerfile

# The images with podman on a local Debian base, no registry (root; docker/podman-host.sh sets it up).
# pointsd:cpu is what tests/container builds and runs; pointsd:cuda (PyPI's CUDA torch, several GB) is
# built, then runs the embedded DAG on this CPU as uid 1000 with the network off: too heavy for CI.
image-cpu:
	docker/build-image.sh cpu

image-cuda:
	docker/build-image.sh cuda
	docker/check-image.sh localhost/pointsd:cuda

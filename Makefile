# The two commands of the README, and the pipeline's everyday targets.
#   make run    install, then run the whole DAG on the embedded default → results/table.md
#   make test   install, then run the test suite (what CI runs: .ci/run)
PYTHON ?= python
TORCH := torch==2.13.0

.PHONY: install run test report dvc-repro dvc-paper paper lint image-cpu

install:
	$(PYTHON) -m pip install $(TORCH)
	$(PYTHON) -m pip install -c constraints.txt -e ".[dev]"

run: install
	snakemake --cores all results/table.md

# A run that collects no test fails (pytest exits 5), like any other failure.
test: install
	$(PYTHON) -m pytest tests

report:
	snakemake --report report.html

paper:
	snakemake --cores all results/table.md --config profile=paper

dvc-repro:
	$(PYTHON) workflow/pipeline_params.py validate
	dvc repro

dvc-paper:
	$(PYTHON) workflow/pipeline_params.py validate --profile paper
	dvc exp run $$($(PYTHON) workflow/pipeline_params.py dvc-set paper)

lint:
	snakemake --lint
	hadolint docker/Dockerfile

# pointsd:cpu with podman on a local Debian base, no registry (root; docker/podman-host.sh sets it up)
image-cpu:
	docker/build-cpu.sh

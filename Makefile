# Two entry points, each does its own set-up on a fresh machine:
#   make demo   runs the main job (Azure DICOM + OHIF) against the local sandbox, no cloud account needed
#   make test   lint, type-check and run every test (this is what .ci/run calls)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo viewer test lint system-deps bench crash clean

$(BIN)/provision: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/provision
	$(BIN)/provision azure apply playbooks/azure-ohif.yaml --sandbox --auto-approve
	$(BIN)/provision azure plan playbooks/azure-ohif.yaml --sandbox --detailed-exitcode
	@echo "Open the viewer: make viewer (serves OHIF at http://localhost:3000; the sandbox keeps running)"

# the OHIF build (npm, once) served with the configuration make demo wrote, until Ctrl+C
viewer: $(BIN)/provision
	$(BIN)/provision viewer provision-out/azure

lint: $(BIN)/provision
	$(BIN)/ruff check provision tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Orthanc + DICOMweb and python plugins, python3-jwt, nginx, Chromium, certutil and wrk (idempotent: no apt when
# every one is present)
system-deps:
	bash scripts/install-system-deps.sh

test: system-deps lint
	$(BIN)/pytest

# the crash suite alone, printing its tables (kill -9 after every write, lost answers, concurrent applies);
# `make test` runs it too. Tables also land in test-artifacts/crash/. See docs/safety.md.
crash: $(BIN)/provision
	$(BIN)/pytest -s -q tests/crash

bench: $(BIN)/provision system-deps
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .provision provision-out .pytest_cache .mypy_cache .ruff_cache

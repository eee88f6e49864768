# Two commands on a fresh machine:  make demo  (the main job)  and  make test  (the test suite).
# Both create .venv and install torch==2.13.0 (the local CPU build) BEFORE the project, so pip never
# pulls a CUDA build of torch.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# local wheels of the runtime's dependencies: the packaging test installs an exported model into a
# fresh virtual environment from these alone (no network)
WHEELHOUSE := .wheelhouse
WHEELS := $(WHEELHOUSE)/.built

.PHONY: install wheelhouse demo test test-slow clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

$(WHEELS): pyproject.toml
	$(BIN)/pip wheel -q -w $(WHEELHOUSE) torch==2.13.0 "gymnasium>=1.1" "numpy>=1.24" "safetensors>=0.4" "setuptools>=68" wheel
	touch $(WHEELS)

install: $(STAMP)

wheelhouse: $(STAMP) $(WHEELS)

demo: $(STAMP)
	$(BIN)/gym-dream demo

# --dist loadgroup: the tests of one xdist_group (the Ray tests, which share one Ray instance) run in one worker
test: $(STAMP) $(WHEELS)
	GYM_DREAM_WHEELHOUSE=$(CURDIR)/$(WHEELHOUSE) $(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) $(WHEELHOUSE) build *.egg-info

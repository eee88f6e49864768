# Two commands on a fresh machine:  make demo  (the main job)  and  make test  (the test suite).
# Both create .venv and install torch==2.13.0 (the local CPU build) BEFORE the project, so pip never
# pulls a CUDA build of torch.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# local wheels of the runtimes' dependencies: the packaging tests install an exported model into a
# fresh virtual environment from these alone (no network): torch's, and onnxruntime's for the torch-free runtime
WHEELHOUSE := .wheelhouse
WHEELS := $(WHEELHOUSE)/.built

.PHONY: install wheelhouse demo test test-slow docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q -e ./gym_dream_onnx
	touch $(STAMP)

# the documentation site's tools (the docs extra), in the same .venv, after torch and the project
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -q -e ".[docs]"
	touch $(DOCS_STAMP)

$(WHEELS): pyproject.toml
	$(BIN)/pip wheel -q -w $(WHEELHOUSE) torch==2.13.0 "gymnasium>=1.1" "numpy>=1.24" "safetensors>=0.4" "setuptools>=68" wheel \
		"onnxruntime>=1.20" "onnx>=1.17"
	touch $(WHEELS)

install: $(STAMP)

wheelhouse: $(STAMP) $(WHEELS)

demo: $(STAMP)
	$(BIN)/gym-dream demo

# --dist loadgroup: the tests of one xdist_group (the Ray tests, which share one Ray instance) run in one worker
test: $(STAMP) $(WHEELS)
	GYM_DREAM_WHEELHOUSE=$(CURDIR)/$(WHEELHOUSE) $(BIN)/python -m pytest -q -n 2 --dist loadgroup

# the site, warnings as errors (dead links between pages, docstrings mkdocstrings cannot read), then the links to
# repository files outside it; the env pages are generated from the model cards by docs/gen_env_pages.py (a hook)
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	$(BIN)/python docs/check_links.py

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) $(WHEELHOUSE) build *.egg-info site docs/envs

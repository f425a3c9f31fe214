# Quick start: `make demo` and `make test`. Both create .venv and install everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=

.PHONY: install demo test test-all bench clean

install: $(STAMP)

# CPU machines get the pinned CPU torch first (one command, pinned together): an unpinned
# torch would pull several GB of CUDA packages. GPU machines take torch from the registry.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if ! command -v nvidia-smi >/dev/null 2>&1; then \
	  $(PY) -m pip install -q torch==2.13.0 torchvision==0.28.0; fi
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m ganeval demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/fid_bench.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache

# Quick start: `make demo` and `make test`. Both create .venv and install everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=

.PHONY: install system-deps demo test test-all bench clean

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

test: $(STAMP) system-deps
	$(PY) -m pytest -q -rs $(PYTEST_ARGS)

# Debian's chromium (browser test, driven by Playwright without a browser download) and
# postgresql (a throwaway cluster for the --db-url tests). Best effort: where they cannot be
# installed, the tests that need them are reported as skipped with the reason.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=none; fi; \
	  if [ "$$SUDO" != none ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages:$$missing"; \
	    ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null ) \
	      || echo "warning: could not install$$missing; the tests that need them will be skipped"; \
	  else echo "warning: cannot install$$missing (no root/apt-get); the tests that need them will be skipped"; fi; \
	fi

bench: $(STAMP)
	$(PY) benchmarks/fid_bench.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache

# Quick start: `make demo` and `make test`. Both create .venv and install everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=

.PHONY: install system-deps demo test check lint docs layers bench clean

install: $(STAMP)

# CPU machines get the pinned CPU torch first (one command, pinned together): an unpinned
# torch would pull several GB of CUDA packages. GPU machines take torch from the registry.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if ! command -v nvidia-smi >/dev/null 2>&1; then \
	  $(PY) -m pip install -q torch==2.13.0 torchvision==0.28.0; fi
	$(PY) -m pip install -q -e '.[all]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m ganeval demo --out $(DEMO_OUT)

# everything: lint, the docs site (strict: a broken link or docstring reference fails), and every
# test (tests/core/test_layers.py checks the import-linter layer contract among them)
test: $(STAMP) system-deps lint docs
	$(PY) -m pytest -q -rs $(PYTEST_ARGS)

# the fast lane: lint, the layer contract and the tests not marked slow (about two minutes)
check: $(STAMP) lint layers
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check --no-cache --quiet .

# the documentation site from docs/ (mkdocs-material; API pages from docstrings by mkdocstrings).
# `make test` builds it into a temporary folder and throws it away; `make docs` keeps site/.
DOCS_OUT ?=
docs: $(STAMP)
	@out="$(DOCS_OUT)"; tmp=""; if [ -z "$$out" ]; then tmp=$$(mktemp -d); out=$$tmp; fi; \
	  NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet --site-dir "$$out" && \
	  { [ -n "$$tmp" ] && rm -rf "$$tmp" || echo "docs site written to $$out"; }

# the layer contract alone (import-linter on the installed layout)
layers: $(STAMP)
	$(PY) -m pytest -q tests/core/test_layers.py

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

# every script in benchmarks/, each with a short workload (BENCH_ARGS_<script> overrides one)
BENCH_ARGS_fid_bench ?= -n 200
BENCH_ARGS_illust2vec_bench ?= --small
BENCH_ARGS_img2img_bench ?= --images 4 --repeats 1 --steps 20
BENCH_ARGS_nearest_bench ?= --train 2000 --queries 100 --exhaustive-queries 10 --real-exhaustive-queries 10 --skimage-pairs 50
BENCH_ARGS_report_bench ?= --bootstrap 1000
BENCH_ARGS_study_load ?= --participants 4 --trials 20
BENCH_ARGS_train_bench ?= --steps 4 --images 256
bench: $(STAMP)
	@$(foreach s,$(sort $(wildcard benchmarks/*.py)),echo "== $(s)" && $(PY) $(s) $(BENCH_ARGS_$(basename $(notdir $(s)))) && ) true

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache

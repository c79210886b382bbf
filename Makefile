# ibmdn: the README's two commands are `make paper` and `make test`; everything else is a helper.
#
#   make setup      create .venv (torch first, from TORCH_SPEC), install the package with its extras
#   make backbones  store the LPIPS AlexNet/VGG16 backbones under IBMDN_BACKBONES (writable cache)
#   make test       setup + backbones, then pytest (CPU); fails on any failure, including "no tests"
#   make paper      setup, then regenerate results/ and figures/ and the README's tables
#   make audit      the parameter audit alone (results/param_audit.csv)
#   make readme     re-render the README's headline tables from results/*.csv
#   make lint       ruff, when installed
#   make clean      caches and build leftovers (keeps .venv, results/, the backbone cache)
#   make distclean  clean + .venv + .cache
#
# Variables (command line or environment): PYTHON, VENV, TORCH_SPEC, EXTRAS, SHARED,
# IBMDN_DATA, IBMDN_WEIGHTS, IBMDN_BACKBONES, PYTEST_ARGS.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

PYTHON ?= python3
VENV ?= $(ROOT)/.venv
# torch first and pinned: a plain `pip install torch` may pull a multi-GB CUDA build. Users with another
# accelerator or index override it, e.g. make setup TORCH_SPEC="torch torchvision --index-url ...".
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
EXTRAS ?= test,notebooks
PYTEST_ARGS ?= -q --durations=15

# data / weights roots: ../shared (read-only) when present and the variables are unset, else ./data, ./weights
SHARED ?= $(abspath $(ROOT)/../shared)
IBMDN_DATA ?= $(if $(wildcard $(SHARED)/data/.),$(SHARED)/data,$(ROOT)/data)
IBMDN_WEIGHTS ?= $(if $(wildcard $(SHARED)/weights/.),$(SHARED)/weights,$(ROOT)/weights)
# perceptual backbones (LPIPS AlexNet/VGG16) need a writable place, apart from the read-only weights root
IBMDN_BACKBONES ?= $(ROOT)/.cache/backbones
export IBMDN_DATA IBMDN_WEIGHTS IBMDN_BACKBONES

VPY := $(VENV)/bin/python
STAMP := $(VENV)/.ibmdn-installed
BACKBONES_STAMP := $(IBMDN_BACKBONES)/.prepared

.PHONY: help setup backbones test paper audit readme lint clean distclean

help:
	@sed -n 's/^#   //p' $(ROOT)/Makefile

setup: $(STAMP)

# Re-installs when pyproject.toml changes; a half-done install leaves no stamp, so the next run retries.
$(STAMP): $(ROOT)/pyproject.toml
	@test -x "$(VPY)" || { echo "creating $(VENV)"; $(PYTHON) -m venv "$(VENV)"; }
	"$(VPY)" -m pip install --quiet "pip>=21.3"
	"$(VPY)" -m pip install --quiet $(TORCH_SPEC)
	"$(VPY)" -m pip install --quiet -e "$(ROOT)[$(EXTRAS)]"
	@touch "$@"

backbones: $(BACKBONES_STAMP)

$(BACKBONES_STAMP): $(STAMP)
	@mkdir -p "$(IBMDN_BACKBONES)"
	"$(VENV)/bin/ibmdn" weights prepare-lpips
	@touch "$@"

test: setup backbones
	cd "$(ROOT)" && "$(VPY)" -m pytest $(PYTEST_ARGS)

# until the notebooks exist, the paper's reproducible part is the parameter audit
paper: setup
	cd "$(ROOT)" && "$(VENV)/bin/ibmdn" audit --out results
	cd "$(ROOT)" && "$(VPY)" -m ibmdn.experiments.readme --readme README.md --results results

audit: setup
	cd "$(ROOT)" && "$(VENV)/bin/ibmdn" audit --out results

readme: setup
	cd "$(ROOT)" && "$(VPY)" -m ibmdn.experiments.readme --readme README.md --results results

lint:
	@if [ -x "$(VENV)/bin/ruff" ]; then R="$(VENV)/bin/ruff"; \
	elif command -v ruff >/dev/null 2>&1; then R=ruff; \
	else echo "ruff is not installed (pip install ruff): lint skipped"; exit 0; fi; \
	cd "$(ROOT)" && $$R check ibmdn tests

clean:
	cd "$(ROOT)" && rm -rf build dist .pytest_cache .ruff_cache ./*.egg-info
	cd "$(ROOT)" && find ibmdn tests -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf "$(VENV)" "$(ROOT)/.cache"

# ibmdn: the README's two commands are `make paper` and `make test`; everything else is a helper.
#
#   make setup      create .venv (torch first, from TORCH_SPEC), install the package with its extras
#                   (EXTRAS: test, notebooks and onnx, so that `make test` runs the ONNX export tests)
#   make backbones  store the LPIPS AlexNet/VGG16 backbones under IBMDN_BACKBONES (writable cache)
#   make test       setup + backbones, then pytest (CPU) on tests/ and nbval on every notebook; fails on any failure
#   make nbval      nbval alone (the notebooks re-executed in a scratch copy with default parameters)
#   make paper      setup + backbones, then run every notebook (papermill; PROFILE=study trains the study's
#                   missing runs first, PROFILE=smoke|short|paper retrains Table VI's IBMDN):
#                   results/*.csv (+ .meta.json), figures/*.png, results/notebooks/*.ipynb, README tables
#   make notebooks  re-execute notebooks/*.ipynb in place with their default parameters (the stored outputs
#                   that nbval compares), in the same scratch layout as `make test`
#   make audit      the parameter audit alone (results/param_audit.csv)
#   make readme     re-render the README's headline tables from results/*.csv
#   make lint       ruff, when installed
#   make clean      caches and build leftovers (keeps .venv, results/, the backbone cache)
#   make distclean  clean + .venv + .cache
#
# Variables (command line or environment): PYTHON, VENV, TORCH_SPEC, EXTRAS, SHARED,
# IBMDN_DATA, IBMDN_WEIGHTS, IBMDN_BACKBONES, PYTEST_ARGS, NBVAL_ARGS, PROFILE, DEVICE.

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
EXTRAS ?= test,notebooks,onnx
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

# `make paper`: the notebooks in dependency order (Table VI reads results/checkpoint_eval.csv when present;
# the figures read Table VI and the audit). Tables I-V and the claims are rendered from the committed study
# records (results/study/); PROFILE=study first trains and records the runs they lack (hours on a CPU,
# resumable). PROFILE=smoke|short|paper sets the training budget of the trained IBMDN of Table VI, the
# figures and the CHFAB walkthrough (default: the package's shipped weights); DEVICE where they train.
PROFILE ?=
DEVICE ?= cpu
PAPER_NOTEBOOKS := param_audit table6 table1 table2 table3 table4 table5 claims figures \
	walkthrough_involution walkthrough_bsconv walkthrough_distillation walkthrough_chfab
STUDY_NOTEBOOKS := table1 table2 table3 table4 table5
PROFILE_NOTEBOOKS := table6 figures walkthrough_chfab
DEVICE_NOTEBOOKS := table1 table2 table3 table4 table5 table6 figures
PAPERMILL_ARGS ?= --cwd notebooks --kernel python3 --no-progress-bar --log-level WARNING

# nbval re-executes the committed notebooks with their default parameters in a scratch copy of notebooks/
# and results/ (NBVAL_DIR), so that nbval never overwrites results/ or figures/; runs/ trained there are
# kept between runs (NBVAL_DIR/runs). Deterministic outputs are compared exactly, the rest is marked
# NBVAL_IGNORE_OUTPUT in the notebooks or sanitised by tests/nbval_sanitize.cfg.
NBVAL_DIR ?= $(ROOT)/.cache/nbval
NBVAL_ARGS ?= --nbval --nbval-current-env --nbval-sanitize-with "$(ROOT)/tests/nbval_sanitize.cfg"

.PHONY: help setup backbones test nbval paper notebooks audit readme lint clean distclean

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

# one pytest session: the unit tests, then nbval on the notebooks (scratch copies, default parameters)
test: setup backbones nbval-scratch
	cd "$(ROOT)" && "$(VPY)" -m pytest $(PYTEST_ARGS) tests "$(NBVAL_DIR)/notebooks" $(NBVAL_ARGS)

nbval: setup backbones nbval-scratch
	cd "$(ROOT)" && "$(VPY)" -m pytest $(PYTEST_ARGS) "$(NBVAL_DIR)/notebooks" $(NBVAL_ARGS)

paper: setup backbones
	mkdir -p "$(ROOT)/results/notebooks" "$(ROOT)/figures"
	cd "$(ROOT)" && for nb in $(PAPER_NOTEBOOKS); do \
	  args=(); \
	  [[ "$(PROFILE)" == study && " $(STUDY_NOTEBOOKS) " == *" $$nb "* ]] && args+=(-p train True); \
	  [[ -n "$(PROFILE)" && "$(PROFILE)" != study && " $(PROFILE_NOTEBOOKS) " == *" $$nb "* ]] && \
	    args+=(-p profile "$(PROFILE)"); \
	  [[ " $(DEVICE_NOTEBOOKS) " == *" $$nb "* ]] && args+=(-p device "$(DEVICE)"); \
	  echo "papermill $$nb $${args[*]}"; \
	  "$(VENV)/bin/papermill" "notebooks/$$nb.ipynb" "results/notebooks/$$nb.ipynb" $(PAPERMILL_ARGS) "$${args[@]}"; \
	done
	cd "$(ROOT)" && "$(VPY)" -m ibmdn.experiments.readme --readme README.md docs/RESULTS.md --results results

notebooks: setup backbones nbval-scratch
	cd "$(NBVAL_DIR)/notebooks" && for nb in *.ipynb; do \
	  echo "executing $$nb"; \
	  "$(VENV)/bin/jupyter" nbconvert --to notebook --execute --ExecutePreprocessor.timeout=3600 \
	    --ExecutePreprocessor.kernel_name=python3 --ExecutePreprocessor.record_timing=False \
	    --log-level WARN --output-dir "$(ROOT)/notebooks" "$$nb"; \
	done

.PHONY: nbval-scratch
nbval-scratch:
	rm -rf "$(NBVAL_DIR)/notebooks" "$(NBVAL_DIR)/results" "$(NBVAL_DIR)/figures"
	mkdir -p "$(NBVAL_DIR)/figures"
	cp -R "$(ROOT)/notebooks" "$(ROOT)/results" "$(NBVAL_DIR)/"
	rm -rf "$(NBVAL_DIR)/results/notebooks"

audit: setup
	cd "$(ROOT)" && "$(VENV)/bin/ibmdn" audit --out results

readme: setup
	cd "$(ROOT)" && "$(VPY)" -m ibmdn.experiments.readme --readme README.md docs/RESULTS.md --results results

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

# gan_lab: `make train` and `make test` work on a fresh machine (they set everything up).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: help install data train test lint format clean bench bench-data bench-metrics gpu-check domain-classifier

# `make` alone lists the targets: each documents itself with a `## description` on its rule line
.DEFAULT_GOAL := help

help: ## list the targets with what each does
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

# The torch pins match the wheels on the development machines' disk (no multi-GB download).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1" || $(PY) -m pip install --quiet "torch<=2.14.1" "torchvision<=0.29.1"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the lab with its dev tools (again when pyproject.toml changes)

# Fashion-MNIST: the Debian package where apt can install it, else torchvision's download.
data: install ## get Fashion-MNIST (the Debian package where possible, else torchvision)
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || true; \
	  elif sudo -n true 2>/dev/null; then sudo -n apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || true; fi; \
	fi
	$(PY) scripts/get_data.py

# the classifier behind domain FID/KID (trained once, cached in ~/.cache/gan_lab/domain)
domain-classifier: data ## train the Fashion-MNIST classifier behind domain FID/KID (cached)
	$(PY) scripts/domain_classifier.py --data fashion_mnist

train: data ## train (the default DCGAN on Fashion-MNIST); overrides: ARGS="model=stylegan ..."
	$(PY) train.py $(ARGS)

test: install ## run the test suite; pytest options: ARGS="-m 'not slow'"
	WANDB_MODE=disabled $(PY) -m pytest -q $(ARGS)

# training-step throughput, lab vs a plain PyTorch loop (the last line is the headline); the
# stylegan32-ref row is StyleGAN2 at stylegan2-ada-pytorch's size (512 channels, 32 px, batch 8)
bench: install ## training-step throughput, lab vs a plain PyTorch loop
	$(PY) scripts/benchmarks/train_step.py $(ARGS)

# the GPU check (lab vs plain loop and vs stylegan2-ada-pytorch at 64/256 px in 32/bf16/16, NaN
# check, FID vs torch-fidelity): make gpu-check REFERENCE=/path/to/stylegan2-ada-pytorch
REFERENCE ?=
gpu-check: install ## the GPU check against stylegan2-ada-pytorch: REFERENCE=/path/to/it
	@test -n "$(REFERENCE)" || { echo "make gpu-check REFERENCE=/path/to/stylegan2-ada-pytorch"; exit 2; }
	PY=$(PY) bash scripts/gpu_check.sh $(REFERENCE)

# data throughput (images/s) of the lab's in-memory and streaming paths vs torchvision ImageFolder
bench-data: install ## data throughput (images/s) vs torchvision ImageFolder
	$(PY) scripts/benchmarks/data_throughput.py $(ARGS)

# one FID/KID evaluation: one extractor pass shared by FID and KID vs one pass each
bench-metrics: install ## one FID/KID evaluation: one shared extractor pass vs one pass each
	$(PY) scripts/benchmarks/metrics_eval.py $(ARGS)

lint: install ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## ruff format and ruff check --fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: ## remove .venv and the pytest and ruff caches
	rm -rf $(VENV) .pytest_cache .ruff_cache

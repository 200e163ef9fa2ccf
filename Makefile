# gan_lab: `make train` and `make test` work on a fresh machine (they set everything up).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install data train test lint format clean bench bench-data bench-metrics gpu-check domain-classifier

# The torch pins match the wheels on the development machines' disk (no multi-GB download).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1" || $(PY) -m pip install --quiet "torch<=2.14.1" "torchvision<=0.29.1"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST: the Debian package where apt can install it, else torchvision's download.
data: install
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || true; \
	  elif sudo -n true 2>/dev/null; then sudo -n apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || true; fi; \
	fi
	$(PY) scripts/get_data.py

# the classifier behind domain FID/KID (trained once, cached in ~/.cache/gan_lab/domain)
domain-classifier: data
	$(PY) scripts/domain_classifier.py --data fashion_mnist

train: data
	$(PY) train.py $(ARGS)

test: install
	WANDB_MODE=disabled $(PY) -m pytest -q $(ARGS)

# training-step throughput, lab vs a plain PyTorch loop (the last line is the headline); the
# stylegan32-ref row is StyleGAN2 at stylegan2-ada-pytorch's size (512 channels, 32 px, batch 8)
bench: install
	$(PY) scripts/benchmarks/train_step.py $(ARGS)

# the GPU check (lab vs plain loop and vs stylegan2-ada-pytorch at 64/256 px in 32/bf16/16, NaN
# check, FID vs torch-fidelity): make gpu-check REFERENCE=/path/to/stylegan2-ada-pytorch
REFERENCE ?=
gpu-check: install
	@test -n "$(REFERENCE)" || { echo "make gpu-check REFERENCE=/path/to/stylegan2-ada-pytorch"; exit 2; }
	PY=$(PY) bash scripts/gpu_check.sh $(REFERENCE)

# data throughput (images/s) of the lab's in-memory and streaming paths vs torchvision ImageFolder
bench-data: install
	$(PY) scripts/benchmarks/data_throughput.py $(ARGS)

# one FID/KID evaluation: one extractor pass shared by FID and KID vs one pass each
bench-metrics: install
	$(PY) scripts/benchmarks/metrics_eval.py $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

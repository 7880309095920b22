# dnalm developer commands. `make train` and `make test` set everything up first (idempotent).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch suited to the machine: the CUDA build where an NVIDIA driver is present, else the CPU build.
TORCH_VERSION ?= 2.13.0
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
TORCH_SPEC ?= $(if $(HAS_GPU),torch>=2.4,torch==$(TORCH_VERSION))
STAMP := $(VENV)/.installed

.PHONY: install train test test-all lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,sweep,report,explain]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv with torch, dnalm and its dependencies

train: $(STAMP)  ## run the embedded default (tiny model on the generated demo task)
	$(BIN)/python -m dnalm.train

test: $(STAMP)  ## the default test suite (offline, CPU, a few minutes)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)  ## also the slow tests
	$(BIN)/python -m pytest -q -m "not gpu and not hf"

lint: $(STAMP)
	$(BIN)/ruff check dnalm tests benchmarks

bench: $(STAMP)  ## speed comparisons against the routes users take today
	$(BIN)/python benchmarks/tokenize_speed.py --n 2000
	$(BIN)/python benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) outputs .pytest_cache

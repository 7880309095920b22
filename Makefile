# dnalm developer commands. `make train` and `make test` set everything up first (idempotent).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch suited to the machine: the CUDA build where an NVIDIA driver is present, else the CPU build.
TORCH_VERSION ?= 2.13.0
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
TORCH_SPEC ?= $(if $(HAS_GPU),torch>=2.4,torch==$(TORCH_VERSION))
STAMP := $(VENV)/.installed

.PHONY: install train test test-all lint docs bench gpu-check gpu-wheels clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,sweep,report,docs]"
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

docs: $(STAMP)  ## the documentation site (mkdocs-material) in site/; a broken link or page fails it
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

bench: $(STAMP)  ## speed comparisons against the routes users take today
	$(BIN)/python benchmarks/tokenize_speed.py --n 2000
	$(BIN)/python benchmarks/train_throughput.py

gpu-check: $(STAMP)  ## the GPU check table (CUDA); `make gpu-check GPU_CHECK_ARGS="--device cpu --tiny"` on a CPU
	PYTHON=$(BIN)/python bash benchmarks/gpu_check.sh $(GPU_CHECK_ARGS)

# Packages a stock CUDA image (Python 3.12, torch, transformers, lightning, peft) lacks, at this venv's
# versions, as wheels in .whl/ for a GPU machine without network (benchmarks/gpu_check.sh installs them).
GPU_WHEELS := hydra-core omegaconf datasets dill multiprocess
gpu-wheels: $(STAMP)
	rm -rf .whl && mkdir -p .whl
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
		$$($(BIN)/python -m pip freeze | grep -iE '^($(subst $(eval) ,|,$(GPU_WHEELS)))==')
	$(BIN)/python -m pip wheel -q --no-deps -w .whl "antlr4-python3-runtime==4.9.3"
	ls .whl

clean:
	rm -rf $(VENV) outputs .pytest_cache

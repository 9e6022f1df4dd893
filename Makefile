# Two entry points: `make demo` and `make test` (see README). Both build .venv from scratch.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# torch first, exactly this CPU build, so stable-baselines3 never pulls a CUDA build.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[postgres,rl,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ai-trading sim

test: $(STAMP)
	$(BIN)/pytest -q tests
	$(BIN)/pytest -q benchmarks --benchmark-disable

bench: $(STAMP)
	$(BIN)/pytest -q benchmarks --benchmark-only --benchmark-json=bench.json

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks bench.json

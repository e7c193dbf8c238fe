# Two set-up commands (README): `make demo` and `make test`; `make bench` for the benchmarks.
# torch is installed in its own pip call first, pinned, so no CUDA wheels are ever pulled.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH  := torch==2.13.0
SOURCES := pyproject.toml CMakeLists.txt $(wildcard kernels/*.cpp kernels/*.h)

.PHONY: demo test bench lint clean

$(VENV)/.stamp-venv:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	touch $@

$(VENV)/.stamp-install: $(VENV)/.stamp-venv $(SOURCES)
	$(PIP) install -q -e .
	touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-venv $(SOURCES)
	$(PIP) install -q -e ".[dev]"
	touch $@ $(VENV)/.stamp-install

demo: $(VENV)/.stamp-install
	$(VENV)/bin/genofast demo --out demo

test: $(VENV)/.stamp-dev
	$(PY) -m pytest tests -q

bench: $(VENV)/.stamp-dev
	$(PY) -m pytest bench -q --benchmark-columns=min,median,max,rounds \
		--benchmark-json=bench/.results.json
	$(PY) bench/tables.py bench/.results.json

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf build $(VENV) demo

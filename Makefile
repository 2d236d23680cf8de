# Two commands a fresh machine needs: `make demo` (the main job) and `make test`.
# Each creates .venv on first use and installs what it needs there.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch: on the project's machines this spec resolves to a local
# wheel; elsewhere pass e.g. TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
# (or plain TORCH=torch on a CUDA machine).
TORCH ?= torch==2.13.0
EXTRAS ?= test,plot,distributed
# torch's OpenMP threads spin while they wait; on a busy 2-core machine that made
# small-network steps 10x slower (measured), and passive waiting costs nothing
# measurable on an idle one.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test lint docs clean bench

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m skdiffusion.experiments

lint: $(VENV)/.installed
	$(PY) -m ruff check skdiffusion tests benchmarks examples

test: lint
	$(PY) -m pytest -m "not slow" -q

$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[$(EXTRAS),docs]"
	touch $@

# Runs every examples/plot_*.py for the gallery's figures (each under a minute on
# two cores); SKDIFFUSION_GALLERY_EXECUTE=0 make docs builds the text only.
docs: $(VENV)/.docs-installed
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(VENV)/.installed
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) docs/_build docs/auto_examples .pytest_cache

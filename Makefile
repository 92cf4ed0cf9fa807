# Two commands do everything on a fresh machine: `make demo` and `make test` (both install what is missing).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.install-stamp
DEMO_OUT ?= demo_output

.PHONY: install test demo lint bench clean-demo

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt setup.py scripts/install.sh
	bash scripts/install.sh
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

demo: install
	$(PY) tools/demo.py --out $(DEMO_OUT)

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m pip install -r requirements-bench.txt
	$(PY) benchmarks/bench_freeze.py
	$(PY) benchmarks/bench_convert.py
	$(PY) benchmarks/bench_trackers.py
	$(PY) benchmarks/bench_sweep.py
	$(PY) benchmarks/bench_tune.py
	$(PY) benchmarks/bench_cli_help.py

clean-demo:
	rm -rf $(DEMO_OUT)

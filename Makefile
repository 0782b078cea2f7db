PYTHON ?= python3
DEMO_HOME ?= $(CURDIR)/.demo

.PHONY: install test demo lint bench samples clean

install:
	$(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -e '.[dev]'

test:
	$(PYTHON) -m pytest -q

demo:
	rm -rf $(DEMO_HOME)
	LSTMCAST_HOME=$(DEMO_HOME) bash scripts/demo.sh

lint:
	$(PYTHON) -m ruff check src tests scripts bench

bench:
	$(PYTHON) bench/bench_train.py
	$(PYTHON) bench/bench_backtest.py

samples:
	$(PYTHON) scripts/make_samples.py

clean:
	rm -rf $(DEMO_HOME) build dist .pytest_cache

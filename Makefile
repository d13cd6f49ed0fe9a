# One command mirrors CI: `make check`. `make test` is what .ci/run runs.
VENV := .venv
BIN := $(VENV)/bin
export PYTHONHASHSEED := 0

.PHONY: install demo test test-slow lint typecheck check bench clean

install:
	./scripts/install.sh

demo: install
	$(BIN)/bremen campaign --config quickstart --workspace runs/quickstart --auto-approve

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy bremen_robot safety sim

check: lint typecheck test

bench: install
	$(BIN)/bremen bench --json bench.json

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache

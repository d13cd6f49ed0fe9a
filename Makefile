# One command mirrors CI: `make check`. `make test` is what .ci/run runs.
VENV := .venv
BIN := $(VENV)/bin
export PYTHONHASHSEED := 0

.PHONY: install demo test lint typecheck check bench clean

install:
	./scripts/install.sh

demo: install
	$(BIN)/bremen campaign --config quickstart --workspace runs/quickstart --auto-approve

# Every test, long ones included: each long test (training end to end, campaigns, live ROS
# graphs) is the only proof of its behaviour, so none is behind the `slow` marker (docs/testing.md).
test: install
	$(BIN)/python -m pytest -q

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

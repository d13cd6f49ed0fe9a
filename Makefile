# One command mirrors CI: `make check`. `make test` is what .ci/run runs.
VENV := .venv
BIN := $(VENV)/bin
export PYTHONHASHSEED := 0

.PHONY: install demo test lint typecheck check bench mutate clean

install:
	./scripts/install.sh

demo: install
	$(BIN)/bremen campaign --config quickstart --workspace runs/quickstart --auto-approve

# Every test, long ones included: each long test (training end to end, campaigns, live ROS
# graphs) is the only proof of its behaviour, so none is behind the `slow` marker (docs/testing.md).
# On TEST_WORKERS pytest-xdist workers, one test file per worker at a time (the live cluster
# tests count as one file). 3 on CI's two cores: the live tests wait on real time (control
# loops, grace periods, DDS discovery) much of theirs, and a third worker fills that wait
# (docs/testing.md); TEST_WORKERS=0 runs in this one process.
TEST_WORKERS ?= 3
test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy bremen_robot safety sim

check: lint typecheck test

bench: install
	$(BIN)/bremen bench --json bench.json

# Mutation testing of the learning maths, tasks and shield (docs/testing.md, Mutation testing).
# Not part of `check` or CI: about an hour on two cores. Narrow it with MUTANTS, e.g.
#   make mutate MUTANTS='bremen_robot.rl.*'
# Results are cached in mutants/ (rm -rf mutants for a fresh run); the table comes last.
MUTANTS ?=
mutate: install
	$(BIN)/pip install --quiet -e '.[mutate]'
	BREMEN_HYPOTHESIS_SCALE=0.25 HYPOTHESIS_PROFILE=ci $(BIN)/mutmut run $(if $(MUTANTS),'$(MUTANTS)')
	$(BIN)/python scripts/mutate_summary.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache mutants

# The two quick-start commands. Each sets up .venv on first use: `run` from requirements.lock (runtime
# only), `test` from requirements-dev.lock (runtime + dev tools).
.PHONY: run test bench lint

PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/alluse_test

run:
	@scripts/bootstrap --runtime
	.venv/bin/alluse serve

test:
	@scripts/bootstrap
	ALLUSE_TEST_PG_URL="$${ALLUSE_TEST_PG_URL:-$(PG_URL)}" .venv/bin/python -m pytest $(PYTEST_ARGS)

bench:
	@scripts/bootstrap --runtime
	.venv/bin/alluse bench

lint:
	@scripts/bootstrap
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
	.venv/bin/lint-imports
	.venv/bin/mypy

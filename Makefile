.PHONY: run test setup lint

# Set everything up and run the service on embedded defaults (SQLite, filesystem broker).
run:
	bin/run

# Set everything up and run the whole test suite.
test:
	bin/test

setup:
	bin/setup --dev

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

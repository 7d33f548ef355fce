# keybot — the two commands a newcomer needs: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DB ?= sqlite

.PHONY: run test lint typecheck unit fuzz bench install clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## Install, migrate the embedded database and start keybot (the shell when no Slack app is configured).
run: $(STAMP)
	@$(BIN)/keybot db upgrade >/dev/null
	@if [ -z "$$SLACK_BOT_TOKEN" ]; then \
	  echo "No Slack app configured: create one from manifest.yaml and set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN) — see README. Starting keybot shell instead."; \
	  exec $(BIN)/keybot shell; \
	else exec $(BIN)/keybot serve; fi

## Lint, type-check and run the whole test suite (SQLite and PostgreSQL).
test: $(STAMP)
	$(BIN)/ruff check bot storage tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

## Fuzz the Slack wire format with at least 5,000 cases per target.
fuzz: $(STAMP)
	KEYBOT_FUZZ_EXAMPLES=5000 $(BIN)/pytest -q tests/e2e/test_fuzz.py

## Benchmark keybot against bare Bolt and bare aiohttp (DB=postgres for PostgreSQL).
bench: $(STAMP)
	$(BIN)/python -m bench --db $(DB)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

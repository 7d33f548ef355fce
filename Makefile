# keybot — the two commands a newcomer needs: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
TESTING := $(VENV)/.installed-test
DB ?= sqlite
# pip's own chatter goes to a log, shown only when an install fails.
PIP_LOG := $(VENV)/install.log

.PHONY: run test lint typecheck unit fuzz bench mutate install clean

$(RUNTIME): pyproject.toml
	@echo "Installing keybot into $(VENV) (first run only; under a minute)…"
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e . >$(PIP_LOG) 2>&1 \
	  || { cat $(PIP_LOG); exit 1; }
	@touch $(RUNTIME)

$(TESTING): $(RUNTIME)
	@echo "Installing the test toolchain into $(VENV)…"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]' >$(PIP_LOG) 2>&1 \
	  || { cat $(PIP_LOG); exit 1; }
	@touch $(TESTING)

install: $(TESTING)

## Install (runtime only), migrate the embedded database and start keybot (the shell when no Slack app is configured).
run: $(RUNTIME)
	@if [ -z "$$SLACK_BOT_TOKEN" ] && [ -z "$$SLACK_CLIENT_ID" ]; then \
	  echo "No Slack app configured (SLACK_BOT_TOKEN is not set): starting keybot shell. To serve Slack, create the app from manifest.yaml — see README, 'Create the Slack app'."; \
	  exec $(BIN)/keybot shell; \
	else $(BIN)/keybot db upgrade >/dev/null && exec $(BIN)/keybot serve; fi

## Lint, type-check, check the layer rules and run the whole test suite (SQLite and PostgreSQL).
test: $(TESTING)
	$(BIN)/ruff check bot storage tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

## Fuzz the Slack wire format with at least 5,000 cases per target.
fuzz: $(TESTING)
	KEYBOT_FUZZ_EXAMPLES=5000 $(BIN)/pytest -q tests/e2e/test_fuzz.py tests/e2e/test_openapi.py

## Mutation testing of the security core with tests/unit (mutmut, ~15 minutes on 2 cores): per-file scores
## against tests/mutation/EQUIVALENTS.md. Not part of `make test`.
mutate: $(TESTING)
	rm -rf mutants && mkdir mutants
	$(BIN)/mutmut run --max-children $$(nproc) >mutants/run.log 2>&1 || { tail -40 mutants/run.log; exit 1; }
	$(BIN)/python -m tests.mutation.scores

## Benchmark keybot against bare Bolt and bare aiohttp (DB=postgres for PostgreSQL).
bench: $(TESTING)
	$(BIN)/python -m bench --db $(DB)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

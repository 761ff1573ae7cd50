# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint compiled bench fuzz clean help

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# setuptools' editable build warns, in a box of !!, that folders named like the package may
	@# shadow it on imports: true of every checkout installed in place, and nothing to act on.
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: install, seed the demo store if there is none, and serve (the console when no Slack/Teams is configured)
# Ctrl-C is a way out the console offers: its status 130 (interrupted by the user) is no error of make's;
# any other failure still is. This shell outlives the same Ctrl-C (trap) to say so, and `signpost` gets
# Ctrl-C as ever (a trapped signal is the default again in the command it starts).
run: $(STAMP)
	$(BIN)/signpost seed-demo --if-empty
	@echo '$(BIN)/signpost run'; trap : INT; $(BIN)/signpost run || { status=$$?; [ $$status -eq 130 ] || exit $$status; }

## test: install what the tests need, hold the gates (lint), then run the whole suite on SQLite and PostgreSQL,
## one worker per core and one more (pytest-xdist; every test has databases of its own, so workers never collide):
## much of the suite waits on subprocesses, PostgreSQL and sockets, so on 2 cores 3 workers took 15 min where
## 2 took 20; work-stealing keeps the long tests from ending the run on one worker
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
# The gates and the compiling below run side by side (two jobs; each on one core), then the tests.
test: $(STAMP)
	@$(MAKE) --no-print-directory --output-sync=target -j2 lint compiled
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --durations=15

# What the tests need ready before they start. The suite starts a few hundred `signpost` processes;
# where PYTHONDONTWRITEBYTECODE is set (as on the machines CI runs on), each compiled every module of
# Signpost's own anew: compiled once here, they are only loaded (0.3-0.5 s of CPU less a process).
# So did each test worker the tests themselves, as pytest rewrites their asserts on import (16 s of
# CPU a worker to collect the suite, 6 s with them kept): one collection with bytecode written keeps
# them. It fails only as the tests' own run will, which says why.
compiled: $(STAMP)
	$(BIN)/python -m tests.prepare
	$(BIN)/python -m compileall -q bot handlers store tests benchmarks > /dev/null
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest --collect-only -q -p no:cacheprovider > /dev/null 2>&1 || true

## lint: ruff's checks, ruff's formatting and strict mypy, on the source, the tests and the benchmarks; any finding fails
CODE := bot handlers store tests benchmarks
lint: $(STAMP)
	@status=0; \
	$(BIN)/ruff check $(CODE) || status=1; \
	$(BIN)/ruff format --check $(CODE) || status=1; \
	$(BIN)/mypy || status=1; \
	if [ $$status -ne 0 ]; then echo "lint: the gates found something (above); fix it before the tests run" >&2; fi; \
	exit $$status

## fuzz: the hostile-input suite at full size (>= 10,000 inputs on SQLite and PostgreSQL), counts at the end
FUZZ_EXAMPLES ?= 400
fuzz: $(STAMP)
	SIGNPOST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/hostile -q -p no:logging -W ignore::hypothesis.errors.HypothesisWarning

## bench: the core benchmark, on a synthetic register of 100,000 children
bench: $(STAMP)
	$(BIN)/python -m benchmarks.core --children 100000

## clean: remove the virtual environment and the demo store; keep signpost.key, or move it aside to
## signpost.key.decommissioned (.2, .3 … when taken) when decommissioning destroyed its keys: it can serve
## no new store, and its public key verifies that store's certificate
EMPTIED := import sys; from pathlib import Path; from store.keys.crypto import KeyRing; from store.keys.keychain import emptied; \
	sys.exit(not emptied(KeyRing.load(Path("signpost.key"))))
clean:
	@if [ -f signpost.key ] && [ -x $(BIN)/python ] && $(BIN)/python -c '$(EMPTIED)' 2>/dev/null; then \
		aside=signpost.key.decommissioned; n=1; \
		while [ -e $$aside ]; do n=$$((n + 1)); aside=signpost.key.decommissioned.$$n; done; \
		mv signpost.key $$aside && echo "signpost.key moved aside to $$aside: decommissioning destroyed its keys, so it can serve no new store; keep it, its public key verifies that store's certificate"; \
	fi
	rm -rf $(VENV) signpost.egg-info signpost.db signpost.db-wal signpost.db-shm signpost.db-journal signpost.key.lock signpost.key.serving.lock signpost.log
	@if [ -e signpost.key ]; then echo "signpost.key kept: it may belong to a store elsewhere (SIGNPOST_DATABASE_URL); delete it yourself if it was the demo's"; fi

## help: these notes (plain `make` only installs)
help:
	@awk '/^## [a-z]+: / { sub(/^## /, ""); n = index($$0, ":"); printf "  %-6s %s\n", substr($$0, 1, n - 1), substr($$0, n + 2); next } \
		/^## / { sub(/^## /, ""); print "         " $$0 }' $(firstword $(MAKEFILE_LIST))

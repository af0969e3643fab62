# Two commands matter (see README): `make demo` and `make test`. Everything else is a step of those.
VENV   ?= .venv
PYTHON ?= python3
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test install lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	bash scripts/system-deps.sh
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# The overview of every demo account in the terminal, then the real bot in a local Slack at http://127.0.0.1:3000.
demo: $(STAMP)
	$(VENV)/bin/billing-bot demo
	$(VENV)/bin/billing-bot sandbox

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	bash scripts/system-deps.sh
	$(VENV)/bin/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(VENV)/bin/python -m bench.core --rows 1000000
	$(VENV)/bin/python -m bench.bot
	$(VENV)/bin/python -m bench.alerts
	$(VENV)/bin/python -m bench.focus --rows 1000000
	$(VENV)/bin/python -m bench.sync

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

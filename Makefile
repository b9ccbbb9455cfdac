# The README's two commands are the contract: each does its own set-up on a fresh machine.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")

.PHONY: setup demo test lint typecheck pytest evals bench clean

setup:
	@command -v uv >/dev/null 2>&1 || [ -x "$(UV)" ] || python3 -m pip install --user --quiet uv
	@$(UV) sync --frozen --quiet

demo: setup
	@$(UV) run --frozen incident-brief demo

lint: setup
	$(UV) run --frozen ruff check .
	$(UV) run --frozen lint-imports

typecheck: setup
	$(UV) run --frozen mypy bot connectors sandbox evals bench

pytest: setup
	$(UV) run --frozen pytest

evals: setup
	$(UV) run --frozen incident-brief eval

test: lint typecheck pytest evals

bench: setup
	$(UV) run --frozen python -m bench

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache

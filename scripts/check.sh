#!/usr/bin/env bash
# The project's one test command (README "Run the tests"): lint, types, layers, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen
dirs=$(for d in livgui training tests benchmarks packaging; do if [ -d "$d" ]; then echo "$d"; fi; done)
echo "== ruff"; ruff check $dirs; ruff format --check $dirs
echo "== mypy (strict below ui)"; mypy livgui
echo "== import-linter"; lint-imports
echo "== pytest"; python -m pytest -q "$@"

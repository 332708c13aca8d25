#!/usr/bin/env bash
# The eval gate as CI runs it: the golden dataset, the offline model, evals/baseline.json.
#
#   evals/ci_gate.sh                  # exit 0 passed, 1 regression, 2 usage or infrastructure error
#   evals/ci_gate.sh --prompt extract@1.2.0 --repeats 3 --store   # any `mailspine eval gate` option
#
# The offline model unless MAILSPINE_MODEL_PROVIDER is set. It records nothing by default
# (--no-store: CI's database is thrown away); a later --store wins.
# Postgres: DATABASE_URL, else the embedded server under var/. PYTHON overrides the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
export MAILSPINE_MODEL_PROVIDER="${MAILSPINE_MODEL_PROVIDER:-offline}"
exec "${PYTHON:-.venv/bin/python}" -m app.cli eval gate --no-store "$@"

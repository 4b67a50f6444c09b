#!/usr/bin/env bash
# Set up, type-check the library (mypy on nampo/, configured in pyproject.toml), then run
# the test suite. `--quick` skips tests marked slow (the full Nampo archive); other
# arguments go to pytest. The suite runs on NAMPO_TEST_WORKERS pytest-xdist workers
# (default 2, one per core of the reference machine; 0 runs it in one process), each
# test file on one worker (`--dist loadfile`: a file's module fixtures, such as a
# processed store, are built once).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$REPO/infra/local/setup.sh"
cd "$REPO"
workers="${NAMPO_TEST_WORKERS:-2}"
args=()
if [ "$workers" != "0" ]; then args+=(-n "$workers" --dist loadfile); fi
for a in "$@"; do
    if [ "$a" = "--quick" ]; then args+=(-m "not slow"); else args+=("$a"); fi
done
# The type checker first: a type error fails the command before the (long) suite runs.
uv run --frozen mypy
exec uv run --frozen pytest "${args[@]}"

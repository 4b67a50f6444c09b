#!/usr/bin/env bash
# Set up, type-check the library (mypy on nampo/, configured in pyproject.toml), then run
# the test suite. `--quick` skips tests marked slow (the full Nampo archive); other
# arguments go to pytest.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$REPO/infra/local/setup.sh"
cd "$REPO"
args=()
for a in "$@"; do
    if [ "$a" = "--quick" ]; then args+=(-m "not slow"); else args+=("$a"); fi
done
# The type checker first: a type error fails the command before the (long) suite runs.
uv run --frozen mypy
exec uv run --frozen pytest "${args[@]}"

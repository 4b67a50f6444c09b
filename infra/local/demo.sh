#!/usr/bin/env bash
# The main job on the built-in default: set up, then `nampo-flows demo` (extra args pass through).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$REPO/infra/local/setup.sh"
cd "$REPO"
exec uv run --frozen nampo-flows demo "$@"

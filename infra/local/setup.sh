#!/usr/bin/env bash
# Install everything nampo needs on a fresh Debian machine (run as root; idempotent):
#   - PostgreSQL 15 with PostGIS 3, for the local STAC API (apt, only when missing);
#   - Debian's Chromium, for the test that drives the Prefect UI (apt, only when missing;
#     Playwright uses /usr/bin/chromium and never downloads a browser of its own);
#   - uv, then the locked Python environment in .venv (uv.lock, all extras, dev tools).
# Sourced by demo.sh and test.sh; safe to run again (it then does almost nothing).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

apt_missing=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || apt_missing+=(postgresql-15)
dpkg -s postgresql-15-postgis-3 >/dev/null 2>&1 || apt_missing+=(postgresql-15-postgis-3)
[ -x /usr/bin/chromium ] || apt_missing+=(chromium)
if [ "${#apt_missing[@]}" -gt 0 ]; then
    echo "setup: installing ${apt_missing[*]} with apt" >&2
    # nampo runs its own clusters on free ports: stop Debian from creating (and starting)
    # a default cluster on 5432 when the package is installed.
    mkdir -p /etc/postgresql-common
    grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
        echo "create_main_cluster = false" >> /etc/postgresql-common/createcluster.conf
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold \
        "${apt_missing[@]}" >/dev/null
fi

if ! command -v uv >/dev/null 2>&1; then
    echo "setup: installing uv" >&2
    python3 -m pip install --quiet --disable-pip-version-check uv==0.13.8
fi
cd "$REPO"
# --compile-bytecode: write every package's .pyc now (about 15 s once, then 0.5 s). With
# PYTHONDONTWRITEBYTECODE set (as on these machines and in the image) Python never writes
# them itself, and every process - each Dask worker, each CLI call - compiled its imports
# from source again: `import prefect, distributed, nampo.run.pipeline` (now nampo.run.execute) took 6.5 s, 2.8 s with.
uv sync --frozen --all-extras --quiet --compile-bytecode

#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need (a Python venv with the
# local S3/DynamoDB server the integration tests start, the infra linters' venvs), then the
# whole workspace's tests and the infrastructure checks.
#
#   scripts/test-all.sh
#
# REIMPORT_VENV      the venv holding moto_server (default: <repo>/.venv)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

export REIMPORT_VENV="${REIMPORT_VENV:-$repo/.venv}"
if [[ ! -x "$REIMPORT_VENV/bin/moto_server" ]]; then
    echo "test-all: installing the local AWS server into $REIMPORT_VENV" >&2
    python3 -m venv "$REIMPORT_VENV"
    "$REIMPORT_VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.*'
fi
export PATH="$REIMPORT_VENV/bin:$PATH"

# Every Rust test: unit, Store conformance (SQLite file, DynamoDB on moto), the CLI, the
# watcher and the Lambda as real processes.
cargo test --workspace --locked

# The SAM template: cfn-lint, the SAM transform, checkov; and its key schema against the store's.
bash infra/check.sh

#!/usr/bin/env bash
# Known advisories (RustSec) against Cargo.lock: cargo-audit over a local copy of the advisory
# database. The database lives on GitHub, which CI machines (and this project's) cannot reach, so
# this is not part of tests/run: give it a checkout of github.com/rustsec/advisory-db.
#   tests/audit.sh /path/to/advisory-db
set -euo pipefail
cd "$(dirname "$0")/.."
db="${1:?usage: tests/audit.sh /path/to/advisory-db (a checkout of github.com/rustsec/advisory-db)}"
command -v cargo-audit >/dev/null || cargo install cargo-audit --locked
echo "advisory database: $(git -C "$db" log -1 --format='%H %cs' 2>/dev/null || echo "$db")"
cargo audit --db "$db" --no-fetch --file Cargo.lock

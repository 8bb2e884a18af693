#!/usr/bin/env bash
# Load harness: builds release binaries, then runs wrk against the naive reference bot and
# Riposte in the same run and prints one table (medians of the runs). Arguments go to the
# driver, e.g. `bench/load.sh --runs 3 --duration 10`; see docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)" >&2
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
cargo build --release --locked --bins -p riposte -p riposte-bench >&2
exec target/release/load --bin target/release "$@"

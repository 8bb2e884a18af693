#!/usr/bin/env bash
# Load harness: builds the binaries as they ship (the `dist` profile: fat link-time optimisation,
# one codegen unit), then runs wrk against the naive reference bot and Riposte in the same run
# and prints one table (medians of the runs). Arguments go to the driver, e.g.
# `bench/load.sh --runs 3 --duration 10`; see docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)" >&2
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
cargo build --profile dist --locked --bins -p riposte -p riposte-bench >&2

# The rows of several instances need PostgreSQL: RIPOSTE_LOAD_POSTGRES names a server
# (`postgres://user@host:port`), else one is started here from the installed binaries, with
# its default settings, as an unprivileged user, and stopped at the end.
postgres=()
if [ -n "${RIPOSTE_LOAD_POSTGRES:-}" ]; then
    postgres=(--postgres "$RIPOSTE_LOAD_POSTGRES")
elif initdb=$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -n 1) && [ -n "$initdb" ]; then
    bin=$(dirname "$initdb")
    pgdir=$(mktemp -d)
    as=()
    if [ "$(id -u)" = 0 ]; then
        chown nobody "$pgdir"
        as=(runuser -u nobody --)
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as[@]}" "$bin/initdb" -D "$pgdir/data" -U riposte --auth=trust -E UTF8 >/dev/null
    "${as[@]}" "$bin/postgres" -D "$pgdir/data" -p "$port" -c listen_addresses=127.0.0.1 \
        -c unix_socket_directories= -c max_connections=200 >"$pgdir/log" 2>&1 &
    # Stopped through its own process id (the one in postmaster.pid), not the wrapper's.
    trap 'kill -INT "$(head -n 1 "$pgdir/data/postmaster.pid" 2>/dev/null)" 2>/dev/null; sleep 1; rm -rf "$pgdir"' EXIT
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done
    sleep 1
    postgres=(--postgres "postgres://riposte@127.0.0.1:$port")
else
    echo "PostgreSQL is not installed: no rows for several instances" >&2
fi
target/dist/load --bin target/dist "${postgres[@]}" "$@"

#!/usr/bin/env bash
# `predcode serve` under a bounded load on 127.0.0.1: trains the digits for 3 epochs, serves the run's folder, and has
# CLIENTS threads post requests of 1 to 8 inputs for SECONDS (bench/serve/ServeLoad.java), while a run trains on into the
# folder (--watch 1s takes each save); then stops the service with SIGTERM.
#   bash bench/serve-load.sh [SECONDS=20] [CLIENTS=8]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}; clients=${2:-8}
dir=$(mktemp -d); trap 'kill -TERM "${pid:-0}" 2>/dev/null || true; rm -rf "$dir"' EXIT
./predcode train --epochs 3 --out "$dir/run" --quiet >/dev/null
./predcode serve --checkpoint "$dir/run" --port 0 --watch 1s >"$dir/serve.log" 2>&1 & pid=$!
for _ in $(seq 100); do grep -q "^serving " "$dir/serve.log" && break; sleep 0.2; done
port=$(grep -o '127.0.0.1:[0-9]*' "$dir/serve.log" | head -1 | cut -d: -f2)
(./predcode train --resume --epochs 30 --out "$dir/run" --quiet >/dev/null 2>&1 || true) & trainer=$!
. bin/find-jdk.sh && predcode_find_jdk
"$JAVA_HOME/bin/java" bench/serve/ServeLoad.java "$port" "$seconds" "$clients"
kill -TERM "$trainer" 2>/dev/null || true; wait "$trainer" 2>/dev/null || true
kill -TERM "$pid"; wait "$pid" || true
echo "versions served: $(grep -c '^serving version' "$dir/serve.log" || true) new ones; $(tail -1 "$dir/serve.log")"

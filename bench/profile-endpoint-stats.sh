#!/usr/bin/env bash
# Where `endpointStats` spends its time: serves a copy of a seeded database (see
# bench/analytics.sh, DB_FILE=), asks the busiest account's `endpointStats(days: DAYS, limit: 50)`
# RUNS times under `perf record`, and prints the server's samples by thread and by kind of work.
#
#   DB_FILE=/path/bench10m.db DAYS=90 RUNS=300 bench/profile-endpoint-stats.sh
#
# TALLY_BIN=path/to/tally profiles another build. Needs perf (apt-get install -y linux-perf),
# sqlite3, curl and python3.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DB_FILE=${DB_FILE:?DB_FILE must name a database seeded by bench/analytics.sh}
DAYS=${DAYS:-90}
RUNS=${RUNS:-300}
PORT=${PORT:-18282}
PASSWORD=tally-bench-password
BIN="${TALLY_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/tally}"
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
command -v perf >/dev/null 2>&1 || apt-get install -y linux-perf >/dev/null

cp "$DB_FILE" "$WORK/bench.db"
TALLY_JWT_SECRET=bench-secret-bench-secret-bench-secret RUST_LOG=warn \
    "$BIN" serve --database-url "sqlite://$WORK/bench.db?mode=rwc" --bind "127.0.0.1:$PORT" \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 6000); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
    sleep 0.1
done

post() { # token body
    curl -s -H 'content-type: application/json' ${1:+-H "authorization: Bearer $1"} \
        --data "$2" "http://127.0.0.1:$PORT/graphql"
}
read -r _ EMAIL < <(sqlite3 -separator ' ' "$WORK/bench.db" \
    "SELECT a.id, (SELECT email FROM users u WHERE u.account_id = a.id ORDER BY email LIMIT 1)
     FROM accounts a JOIN usage_periods up ON up.account_id = a.id
     GROUP BY a.id ORDER BY SUM(up.calls) DESC LIMIT 1")
TOKEN=$(post "" "{\"query\":\"mutation { login(email: \\\"$EMAIL\\\", password: \\\"$PASSWORD\\\") { token } }\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["login"]["token"])')
QUERY="{\"query\":\"{ endpointStats(days: $DAYS, limit: 50) { endpoint method totalCalls failedCalls avgResponseTimeMs p95ResponseTimeMs } }\"}"

for _ in $(seq 1 20); do post "$TOKEN" "$QUERY" >/dev/null; done # warm the page cache
perf record -q -F 2999 -e cpu-clock -g -p "$SERVER_PID" -o "$WORK/perf.data" &
PERF=$!
for _ in $(seq 1 "$RUNS"); do post "$TOKEN" "$QUERY" >/dev/null; done
kill -INT "$PERF"; wait "$PERF" || true

echo "== endpointStats(days: $DAYS) × $RUNS for $EMAIL: the server's samples by thread and work"
perf report -i "$WORK/perf.data" --no-children --sort comm,symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9]' | awk '{
        share = $1; sub("%", "", share); line = $0; work = "other"
        if (line ~ /serde_json|[dD]eserializ/) work = "JSON parsing"
        else if (line ~ /histogram/) work = "histogram merging"
        else if (line ~ /btree::map/) work = "BTreeMap"
        else if (line ~ /sqlite3|vdbe|pcache|pager|Btree/) work = "SQLite"
        else if (line ~ /\[k\]/) work = "kernel"
        else if (line ~ /mi_|malloc|memmove|memcmp|memcpy/) work = "allocation and copies"
        total[$2 "\t" work] += share
    } END { for (k in total) printf "%6.2f%%\t%s\n", total[k], k }' | sort -rn

#!/usr/bin/env bash
# Analytics query benchmark.
#
# Builds the release binary, seeds a temporary SQLite database with `tally seed-demo`, starts the
# server on loopback, and times every analytics query through `POST /graphql` (p50/p95 over RUNS
# requests each, measured by curl). In the same run it computes the same answers naively from the
# raw events with the sqlite3 CLI (NAIVE_RUNS runs each) and prints both with their ratio.
#
#   EVENTS=10000000 ACCOUNTS=1000 RUNS=200 NAIVE_RUNS=5 bench/analytics.sh
#
# TALLY_BIN=path/to/tally measures another build. DB_FILE=path keeps the seeded database there
# and reuses it on later runs (a copy is served, so every run starts from the same data; a build
# newer than the seed migrates its copy first). NAIVE_RUNS=0 skips the naive SQL.
#
# Needs: cargo, curl, sqlite3 (apt-get install -y sqlite3), python3 (for JSON and percentiles).
# Nothing leaves the machine: the server listens on 127.0.0.1 only.
set -euo pipefail

EVENTS=${EVENTS:-10000000}
ACCOUNTS=${ACCOUNTS:-1000}
RUNS=${RUNS:-200}
NAIVE_RUNS=${NAIVE_RUNS:-5}
PORT=${PORT:-18181}
PASSWORD=tally-bench-password
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
DB="$WORK/bench.db"
URL="sqlite://$DB?mode=rwc"
BIN="${TALLY_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/tally}"
DB_FILE=${DB_FILE:-}
SERVER_PID=

cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in curl sqlite3 python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

if [ -z "${TALLY_BIN:-}" ]; then
    echo "== build (release)"
    (cd "$ROOT" && cargo build --release --quiet)
fi

if [ -n "$DB_FILE" ] && [ -f "$DB_FILE" ]; then
    echo "== seed: reusing $DB_FILE"
    cp "$DB_FILE" "$DB"
    seed_secs="(reused)"
else
    echo "== seed: $EVENTS events, $ACCOUNTS accounts"
    seed_start=$(date +%s.%N)
    TALLY_DEMO_PASSWORD=$PASSWORD TALLY_LOG_FORMAT=json "$BIN" seed-demo --database-url "$URL" \
        --events "$EVENTS" --accounts "$ACCOUNTS" 2>"$WORK/seed.log" | grep -v "API key" || true
    seed_end=$(date +%s.%N)
    seed_secs=$(python3 -c "print(round($seed_end - $seed_start, 1))")
    echo "seeded in ${seed_secs}s; database $(du -h "$DB" | cut -f1)"
    if [ -n "$DB_FILE" ]; then cp "$DB" "$DB_FILE"; fi
fi

echo "== serve"
TALLY_JWT_SECRET=bench-secret-bench-secret-bench-secret TALLY_LOG_FORMAT=json RUST_LOG=warn \
    "$BIN" serve --database-url "$URL" --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
# A newer build migrates the copy first (on 10M events, minutes).
for _ in $(seq 1 6000); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
    sleep 0.1
done

gql() { # token query → JSON body
    local body
    body=$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$2")
    curl -s -H 'content-type: application/json' ${1:+-H "authorization: Bearer $1"} \
        --data "$body" "http://127.0.0.1:$PORT/graphql"
}
login() {
    gql "" "mutation { login(email: \"$1\", password: \"$PASSWORD\") { token } }" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["login"]["token"])'
}

# The busiest account: the worst case of the per-account queries.
read -r ACCOUNT EMAIL < <(sqlite3 -separator ' ' "$DB" \
    "SELECT a.id, (SELECT email FROM users u WHERE u.account_id = a.id ORDER BY email LIMIT 1)
     FROM accounts a JOIN usage_periods up ON up.account_id = a.id
     GROUP BY a.id ORDER BY SUM(up.calls) DESC LIMIT 1")
MEMBER=$(login "$EMAIL")
ADMIN=$(login admin@demo.tally.test)
ACCOUNT_EVENTS=$(sqlite3 "$DB" "SELECT COUNT(*) FROM usage_events WHERE account_id = '$ACCOUNT'")
echo "busiest account $ACCOUNT ($ACCOUNT_EVENTS raw events)"

# Times in the server's terms (UTC), for the naive SQL.
read -r NOW_MS TODAY_MS MONTH_MS NEXT_MONTH_MS D7_MS D30_MS D90_MS < <(python3 - <<'EOF'
import datetime as dt
now = dt.datetime.now(dt.timezone.utc)
today = now.replace(hour=0, minute=0, second=0, microsecond=0)
month = today.replace(day=1)
nxt = (month + dt.timedelta(days=32)).replace(day=1)
ms = lambda t: int(t.timestamp() * 1000)
print(ms(now), ms(today), ms(month), ms(nxt), ms(today - dt.timedelta(days=6)),
      ms(today - dt.timedelta(days=29)), ms(today - dt.timedelta(days=89)))
EOF
)

declare -A QUERY NAIVE
QUERY[currentUsage]='{ currentUsage { periodStart periodEnd calls limit remaining overageCalls overageCostCents usagePercentage } }'
NAIVE[currentUsage]="SELECT SUM(cost) FROM usage_events WHERE account_id = '$ACCOUNT' AND occurred_at >= $MONTH_MS AND occurred_at < $NEXT_MONTH_MS;"
QUERY[usageHistory]='{ usageHistory(days: 30) { date totalCalls successfulCalls failedCalls avgResponseTimeMs } }'
NAIVE[usageHistory]="SELECT date(occurred_at / 1000, 'unixepoch') AS d, SUM(kind IN ('API_CALL', 'TOOL_CALL')),
    SUM(status_code BETWEEN 200 AND 399), SUM(status_code >= 400), ROUND(AVG(response_time_ms))
    FROM usage_events WHERE account_id = '$ACCOUNT' AND occurred_at >= $D30_MS GROUP BY d ORDER BY d;"
# endpointStats over 7, 30 and 90 days: the same naive SQL with the window's start.
endpoint_stats_naive() { # window start in ms
    echo "WITH e AS (SELECT method, endpoint, status_code, response_time_ms AS ms FROM usage_events
      WHERE account_id = '$ACCOUNT' AND kind = 'API_CALL' AND occurred_at >= $1),
    r AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY method, endpoint ORDER BY ms) AS rn,
      COUNT(*) OVER (PARTITION BY method, endpoint) AS n FROM e)
    SELECT method, endpoint, n, SUM(status_code >= 400), ROUND(AVG(ms)), MIN(CASE WHEN rn * 100 >= n * 95 THEN ms END)
    FROM r GROUP BY method, endpoint ORDER BY n DESC, method, endpoint LIMIT 50;"
}
for days in 7 30 90; do
    QUERY[endpointStats$days]="{ endpointStats(days: $days, limit: 50) { endpoint method totalCalls failedCalls avgResponseTimeMs p95ResponseTimeMs } }"
done
NAIVE[endpointStats7]=$(endpoint_stats_naive "$D7_MS")
NAIVE[endpointStats30]=$(endpoint_stats_naive "$D30_MS")
NAIVE[endpointStats90]=$(endpoint_stats_naive "$D90_MS")
QUERY[toolStats]='{ toolStats(days: 7, limit: 50) { skillId toolName calls lastUsedAt } }'
NAIVE[toolStats]="SELECT skill_id, tool_name, COUNT(*) AS c, MAX(occurred_at) FROM usage_events
    WHERE account_id = '$ACCOUNT' AND kind IN ('TOOL_CALL', 'INSTALL') AND occurred_at >= $D7_MS
    GROUP BY skill_id, tool_name ORDER BY c DESC, skill_id, tool_name LIMIT 50;"
QUERY[adminOverview]='{ adminOverview { users { free pro enterprise total } apiCalls { today thisMonth } revenue { mrrCents overageThisMonthCents } } }'
NAIVE[adminOverview]="SELECT plan_code, COUNT(*) FROM accounts GROUP BY plan_code;
    SELECT SUM(p.price_cents) FROM accounts a JOIN plans p ON p.code = a.plan_code;
    SELECT SUM(occurred_at >= $TODAY_MS), COUNT(*) FROM usage_events
      WHERE kind IN ('API_CALL', 'TOOL_CALL') AND occurred_at >= $MONTH_MS AND occurred_at <= $NOW_MS;
    SELECT SUM(((c - p.monthly_quota) * p.overage_price_micros + 5000) / 10000) FROM
      (SELECT account_id, SUM(cost) AS c FROM usage_events WHERE occurred_at >= $MONTH_MS AND occurred_at < $NEXT_MONTH_MS GROUP BY account_id) u
      JOIN accounts a ON a.id = u.account_id JOIN plans p ON p.code = a.plan_code
      WHERE p.monthly_quota IS NOT NULL AND c > p.monthly_quota;"
QUERY[adminAccounts]='{ adminAccounts(limit: 50) { totalCount nodes { id name plan { code } currentUsage { calls limit remaining usagePercentage } } } }'
NAIVE[adminAccounts]="SELECT COUNT(*) FROM accounts;
    SELECT a.id, a.name, a.plan_code, (SELECT SUM(cost) FROM usage_events e WHERE e.account_id = a.id
      AND e.occurred_at >= $MONTH_MS AND e.occurred_at < $NEXT_MONTH_MS)
    FROM accounts a ORDER BY a.created_at, a.id LIMIT 50;"

percentiles() { # stdin: seconds, one a line → "p50_ms p95_ms"
    python3 -c '
import math, sys
v = sorted(float(x) * 1000 for x in sys.stdin if x.strip())
pick = lambda q: v[max(1, math.ceil(q * len(v))) - 1]
print(f"{pick(0.50):.2f} {pick(0.95):.2f}")'
}

ORDER=(currentUsage usageHistory endpointStats7 endpointStats30 endpointStats90 toolStats adminOverview adminAccounts)
RESULTS="$WORK/results.txt"
: >"$RESULTS"
echo "== measure: $RUNS GraphQL requests and $NAIVE_RUNS naive SQL runs per query"
for name in "${ORDER[@]}"; do
    token=$MEMBER
    [[ $name == admin* ]] && token=$ADMIN
    body=$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "${QUERY[$name]}")
    check=$(curl -s -H 'content-type: application/json' -H "authorization: Bearer $token" --data "$body" \
        "http://127.0.0.1:$PORT/graphql")
    if [[ $check == *'"errors"'* ]]; then echo "$name failed: $check" >&2; exit 1; fi
    for _ in 1 2 3 4 5; do # warm-up
        curl -s -o /dev/null -H 'content-type: application/json' -H "authorization: Bearer $token" \
            --data "$body" "http://127.0.0.1:$PORT/graphql"
    done
    read -r g50 g95 < <(for _ in $(seq 1 "$RUNS"); do
        curl -s -o /dev/null -w '%{time_total}\n' -H 'content-type: application/json' \
            -H "authorization: Bearer $token" --data "$body" "http://127.0.0.1:$PORT/graphql"
    done | percentiles)
    if [ "$NAIVE_RUNS" -gt 0 ]; then
        read -r n50 n95 < <(for _ in $(seq 1 "$NAIVE_RUNS"); do
            # sqlite3's own timer: the statements' time, without the CLI's start-up.
            printf '.timer on\n%s\n' "${NAIVE[$name]}" | sqlite3 "$DB" |
                awk '/^Run Time: real/ { total += $4 } END { print total }'
        done | percentiles)
        ratio=$(python3 -c "print(f'{$n50 / $g50:.0f}x')")
    else
        n50=-; n95=-; ratio=-
    fi
    printf '%-16s graphql p50 %8s ms  p95 %8s ms | naive SQL p50 %9s ms  p95 %9s ms | %s\n' \
        "$name" "$g50" "$g95" "$n50" "$n95" "$ratio" | tee -a "$RESULTS"
done

echo
echo "machine: $(uname -srm); $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); events $EVENTS; accounts $ACCOUNTS; seed ${seed_secs}s;" \
    "rollup rows: endpoints $(sqlite3 "$DB" 'SELECT COUNT(*) FROM usage_daily_endpoints')," \
    "tools $(sqlite3 "$DB" 'SELECT COUNT(*) FROM usage_daily_tools')"

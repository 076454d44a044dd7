#!/usr/bin/env bash
# Ingestion benchmark: one release server on a fresh SQLite file, measured with wrk in one run.
#
#   1. POST /api/track (valid key, a unique event_id per request) against GET /health of the same
#      server, at 64 and 256 connections: requests/s of each and their ratio;
#   2. POST /api/v1/verify: its peak rate, then p50/p99 latency when paced at half that rate
#      (bench/paced.lua spaces each connection's requests; wrk has no fixed-rate mode);
#   3. the server's peak RSS.
#
# The per-key rate limit and FREE's quota would stop a benchmark, so the key's account is moved
# to ENTERPRISE and that plan's rate limit raised through the admin GraphQL API.
#
# Usage: bench/ingest.sh            (DURATION=10s THREADS=2 to change the defaults;
#                                    TALLY_BIN=path/to/tally to measure another build;
#                                    PROFILE=file.txt to write where the server's time goes
#                                    while tracking at 64 connections, with perf)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
ADMIN_EMAIL="bench-admin@example.com"
ADMIN_PASSWORD="bench admin password"

if ! command -v wrk >/dev/null 2>&1; then
  apt-get install -y wrk >/dev/null
fi
for tool in curl jq; do
  command -v "$tool" >/dev/null 2>&1 || apt-get install -y "$tool" >/dev/null
done

# TALLY_BIN runs another build (e.g. an older one, for a before/after comparison in one sitting).
if [ -n "${TALLY_BIN:-}" ]; then
  BIN="$TALLY_BIN"
else
  cargo build --release --quiet
  BIN=target/release/tally
fi

WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
TALLY_DATABASE_URL="sqlite://$WORK/tally.db?mode=rwc" \
TALLY_BIND="127.0.0.1:$PORT" \
TALLY_ADMIN_EMAIL="$ADMIN_EMAIL" TALLY_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
TALLY_LOG=warn \
  "$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 200); do
  curl -fs "$URL/health" >/dev/null 2>&1 && break
  sleep 0.05
done

gql() { # token query variables-json
  local auth=()
  [ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
  curl -fs "$URL/graphql" -H 'Content-Type: application/json' "${auth[@]}" \
    -d "$(jq -nc --arg q "$2" --argjson v "$3" '{query: $q, variables: $v}')"
}
ADMIN=$(gql "" 'mutation($e:String!,$p:String!){login(email:$e,password:$p){token}}' \
  "$(jq -nc --arg e "$ADMIN_EMAIL" --arg p "$ADMIN_PASSWORD" '{e:$e,p:$p}')" | jq -r .data.login.token)
SIGNUP=$(gql "" 'mutation{signUp(email:"bench@example.com",password:"bench password 123",accountName:"Bench"){token user{account{id}}}}' '{}')
TOKEN=$(jq -r .data.signUp.token <<<"$SIGNUP")
ACCOUNT=$(jq -r .data.signUp.user.account.id <<<"$SIGNUP")
KEY=$(gql "$TOKEN" 'mutation{createApiKey(name:"bench"){key}}' '{}' | jq -r .data.createApiKey.key)
gql "$ADMIN" 'mutation($a:ID!){adminSetPlan(accountId:$a,plan:ENTERPRISE){id}}' "{\"a\":\"$ACCOUNT\"}" >/dev/null
gql "$ADMIN" 'mutation{adminUpdatePlan(code:ENTERPRISE,input:{rateLimitPerMinute:1000000}){code}}' '{}' >/dev/null
[ "${KEY#tly_}" != "$KEY" ] || { echo "could not create a key" >&2; exit 1; }

rps() { awk '/^Requests\/sec:/ {print $2}'; }
export TALLY_BENCH_KEY="$KEY" TALLY_BENCH_TS="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

echo "== machine: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%Y-%m-%d)"
echo "== track vs health, $DURATION each, $THREADS wrk threads"
for conns in 64 256; do
  health=$(wrk -t"$THREADS" -c"$conns" -d"$DURATION" "$URL/health" | rps)
  if [ -n "${PROFILE:-}" ] && [ "$conns" = 64 ]; then
    # Where the server's time goes while it tracks: perf's software clock (no hardware counters
    # needed), call graphs, folded into a text report.
    command -v perf >/dev/null 2>&1 || apt-get install -y linux-perf >/dev/null
    perf record -q -F 999 -e cpu-clock -g -p "$SERVER" -o "$WORK/perf.data" &
    PERF=$!
  fi
  track=$(wrk -t"$THREADS" -c"$conns" -d"$DURATION" -s bench/track.lua "$URL/api/track" | rps)
  if [ -n "${PERF:-}" ]; then
    kill -INT "$PERF"; wait "$PERF" || true; PERF=""
    perf report -i "$WORK/perf.data" --no-children --sort comm,dso,symbol --stdio 2>/dev/null |
      grep -v '^$' | head -n 400 >"$PROFILE"
    echo "profile of the track run at 64 connections: $PROFILE"
  fi
  ratio=$(awk -v t="$track" -v h="$health" 'BEGIN {printf "%.2f", t / h}')
  echo "connections=$conns health_rps=$health track_rps=$track ratio=$ratio"
done
stored=$(sqlite3 "$WORK/tally.db" "SELECT COUNT(*) FROM usage_events" 2>/dev/null || echo "?")
echo "events stored: $stored"

echo "== verify"
peak=$(wrk -t"$THREADS" -c64 -d"$DURATION" -s bench/verify.lua "$URL/api/v1/verify" | rps)
half=$(awk -v p="$peak" 'BEGIN {printf "%d", p / 2}')
echo "verify peak_rps=$peak; paced at $half/s with 32 connections:"
export TALLY_BENCH_RATE="$half" TALLY_BENCH_CONNECTIONS=32
wrk -t"$THREADS" -c32 -d"$DURATION" --latency -s bench/paced.lua "$URL/api/v1/verify" |
  awk '/Requests\/sec/ {print "achieved_rps=" $2} /^ +50%/ {print "p50=" $2} /^ +99%/ {print "p99=" $2}'

echo "== memory"
grep -E 'VmHWM|VmRSS' "/proc/$SERVER/status"

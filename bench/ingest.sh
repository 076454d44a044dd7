#!/usr/bin/env bash
# Ingestion benchmark: one release server per backend (a fresh SQLite file; a fresh PostgreSQL
# database when one answers), measured with wrk in one run:
#
#   0. the disk's own floor: 4 KiB write + fsync, p50 and p99, in the SQLite file's directory;
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
#                                    BACKENDS="sqlite postgres" to choose;
#                                    BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432;
#                                    TALLY_BIN=path/to/tally to measure another build;
#                                    PROFILE=file.txt to write where the server's time goes
#                                    while tracking at 64 connections, with perf)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
BACKENDS="${BACKENDS:-sqlite postgres}"
BENCH_POSTGRES="${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
ADMIN_EMAIL="bench-admin@example.com"
ADMIN_PASSWORD="bench admin password"

for tool in wrk curl jq psql:postgresql-client; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || apt-get install -y "${tool#*:}" >/dev/null
done

# TALLY_BIN runs another build (e.g. an older one, for a before/after comparison in one sitting).
if [ -n "${TALLY_BIN:-}" ]; then
  BIN="$TALLY_BIN"
else
  cargo build --release --quiet
  BIN=target/release/tally
fi

WORK=$(mktemp -d)
SERVER=""
DATABASE=""
stop_server() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
  fi
  if [ -n "$DATABASE" ]; then
    psql -q "$BENCH_POSTGRES/postgres" -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" >/dev/null
    DATABASE=""
  fi
}
trap 'stop_server; rm -rf "$WORK"' EXIT

rps() { awk '/^Requests\/sec:/ {print $2}'; }

gql() { # token query variables-json
  local auth=()
  [ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
  curl -fs "$URL/graphql" -H 'Content-Type: application/json' "${auth[@]}" \
    -d "$(jq -nc --arg q "$2" --argjson v "$3" '{query: $q, variables: $v}')"
}

start_server() { # database-url
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  URL="http://127.0.0.1:$port"
  # wrk's connections all come from one address: lift the per-address share above them.
  TALLY_DATABASE_URL="$1" TALLY_BIND="127.0.0.1:$port" TALLY_MAX_CONNECTIONS_PER_ADDRESS=1024 \
  TALLY_ADMIN_EMAIL="$ADMIN_EMAIL" TALLY_ADMIN_PASSWORD="$ADMIN_PASSWORD" TALLY_LOG=warn \
    "$BIN" serve >"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 200); do
    curl -fs "$URL/health" >/dev/null 2>&1 && break
    sleep 0.05
  done
  local admin signup token account
  admin=$(gql "" 'mutation($e:String!,$p:String!){login(email:$e,password:$p){token}}' \
    "$(jq -nc --arg e "$ADMIN_EMAIL" --arg p "$ADMIN_PASSWORD" '{e:$e,p:$p}')" | jq -r .data.login.token)
  signup=$(gql "" 'mutation{signUp(email:"bench@example.com",password:"bench password 123",accountName:"Bench"){token user{account{id}}}}' '{}')
  token=$(jq -r .data.signUp.token <<<"$signup")
  account=$(jq -r .data.signUp.user.account.id <<<"$signup")
  KEY=$(gql "$token" 'mutation{createApiKey(name:"bench"){key}}' '{}' | jq -r .data.createApiKey.key)
  gql "$admin" 'mutation($a:ID!){adminSetPlan(accountId:$a,plan:ENTERPRISE){id}}' "{\"a\":\"$account\"}" >/dev/null
  gql "$admin" 'mutation{adminUpdatePlan(code:ENTERPRISE,input:{rateLimitPerMinute:1000000}){code}}' '{}' >/dev/null
  [ "${KEY#tly_}" != "$KEY" ] || { echo "could not create a key" >&2; cat "$WORK/server.log" >&2; exit 1; }
  export TALLY_BENCH_KEY="$KEY" TALLY_BENCH_TS="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}

measure() { # backend
  echo "== $1: track vs health, $DURATION each, $THREADS wrk threads"
  local conns health track ratio peak half PERF=""
  for conns in 64 256; do
    health=$(wrk -t"$THREADS" -c"$conns" -d"$DURATION" "$URL/health" | rps)
    if [ -n "${PROFILE:-}" ] && [ "$conns" = 64 ]; then
      # Where the server's time goes while it tracks: perf's software clock (no hardware
      # counters needed), call graphs, folded into a text report.
      command -v perf >/dev/null 2>&1 || apt-get install -y linux-perf >/dev/null
      perf record -q -F 999 -e cpu-clock -g -p "$SERVER" -o "$WORK/perf.data" &
      PERF=$!
    fi
    track=$(wrk -t"$THREADS" -c"$conns" -d"$DURATION" -s bench/track.lua "$URL/api/track" | rps)
    if [ -n "$PERF" ]; then
      kill -INT "$PERF"; wait "$PERF" || true; PERF=""
      perf report -i "$WORK/perf.data" --no-children --sort comm,dso,symbol --stdio \
        >"$WORK/perf.txt" 2>/dev/null
      awk 'NF && n++ < 400' "$WORK/perf.txt" >"$PROFILE.$1"
      echo "profile of the track run at 64 connections: $PROFILE.$1"
    fi
    ratio=$(awk -v t="$track" -v h="$health" 'BEGIN {printf "%.2f", t / h}')
    echo "$1 connections=$conns health_rps=$health track_rps=$track ratio=$ratio"
  done

  echo "== $1: verify"
  peak=$(wrk -t"$THREADS" -c64 -d"$DURATION" -s bench/verify.lua "$URL/api/v1/verify" | rps)
  half=$(awk -v p="$peak" 'BEGIN {printf "%d", p / 2}')
  echo "$1 verify peak_rps=$peak; paced at $half/s with 32 connections:"
  TALLY_BENCH_RATE="$half" TALLY_BENCH_CONNECTIONS=32 \
    wrk -t"$THREADS" -c32 -d"$DURATION" --latency -s bench/paced.lua "$URL/api/v1/verify" |
    awk -v b="$1" '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
      END {print b " verify achieved_rps=" r " p50=" p50 " p99=" p99}'
  echo "$1 memory: $(grep -E 'VmHWM' "/proc/$SERVER/status" | tr -s ' ')"
}

echo "== machine: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$WORK" <<'EOF'
# The disk's floor under a durable commit: 4 KiB written and fsynced, 2,000 times.
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
block, took = b"x" * 4096, []
for _ in range(2000):
    start = time.perf_counter()
    os.write(fd, block)
    os.fsync(fd)
    took.append((time.perf_counter() - start) * 1000)
os.close(fd)
took.sort()
print(f"== disk: 4 KiB write + fsync p50={took[1000]:.3f}ms p99={took[1980]:.3f}ms")
EOF

for backend in $BACKENDS; do
  case "$backend" in
    sqlite)
      start_server "sqlite://$WORK/tally.db?mode=rwc"
      ;;
    postgres)
      if ! psql -q "$BENCH_POSTGRES/postgres" -c 'SELECT 1' >/dev/null 2>&1; then
        echo "== postgres: nothing answers at $BENCH_POSTGRES, skipped"
        continue
      fi
      DATABASE="tally_ingest_bench_$$"
      psql -q "$BENCH_POSTGRES/postgres" -c "CREATE DATABASE $DATABASE" >/dev/null
      start_server "$BENCH_POSTGRES/$DATABASE"
      ;;
    *) echo "unknown backend $backend" >&2; exit 1 ;;
  esac
  measure "$backend"
  stop_server
done

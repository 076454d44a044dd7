#!/usr/bin/env bash
# Several instances on one PostgreSQL (and Redis): 1, 2 and 4 release servers on a fresh database
# each time, one wrk spreading its threads over them (bench/cluster.lua), all in one run:
#
#   1. POST /api/track and POST /api/v1/verify: requests/s and p99, and the CPU seconds the
#      instances, PostgreSQL and wrk each used (where the time goes on a shared machine);
#   2. quota accuracy: a FREE account (1,000 calls a month) verified flat out from every instance:
#      how many were allowed, and what the database counted; then a FREE account whose quota
#      cannot run out, verified like the unlimited one (what deciding quotas in the database costs);
#   3. limit accuracy: a key of a 100-a-minute plan verified from every instance for LIMIT_SECONDS:
#      allowed, against the bound of 100 plus what refills meanwhile (shared through Redis when
#      one answers, otherwise each instance allows the whole limit).
#
# Usage: bench/cluster.sh   (DURATION=10s THREADS=4 INSTANCES="1 2 4" CONNECTIONS="64 256"
#                            LIMIT_SECONDS=6;
#                            TALLY_BIN=path/to/tally to measure another build;
#                            BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432,
#                            BENCH_REDIS=redis://127.0.0.1:6379, BENCH_REDIS=none for no Redis)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
THREADS="${THREADS:-4}"
INSTANCES="${INSTANCES:-1 2 4}"
CONNECTIONS="${CONNECTIONS:-64 256}"
LIMIT_SECONDS="${LIMIT_SECONDS:-6}"
BENCH_POSTGRES="${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
BENCH_REDIS="${BENCH_REDIS:-redis://127.0.0.1:6379}"
ADMIN_EMAIL="bench-admin@example.com"
ADMIN_PASSWORD="bench admin password"

for tool in wrk curl jq psql:postgresql-client redis-cli:redis-tools; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || apt-get install -y "${tool#*:}" >/dev/null
done
if [ -n "${TALLY_BIN:-}" ]; then
  BIN="$TALLY_BIN"
else
  cargo build --release --quiet
  BIN=target/release/tally
fi
if [ "$BENCH_REDIS" != none ] && ! redis-cli -u "$BENCH_REDIS" ping >/dev/null 2>&1; then
  echo "no Redis answers at $BENCH_REDIS: limits are per instance" >&2
  BENCH_REDIS=none
fi

WORK=$(mktemp -d)
PIDS=()
DATABASE=""
stop_instances() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
  if [ -n "$DATABASE" ]; then
    psql -q "$BENCH_POSTGRES/postgres" -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" >/dev/null
    DATABASE=""
  fi
}
trap 'stop_instances; rm -rf "$WORK"' EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_instance() { # port
  local redis=()
  [ "$BENCH_REDIS" != none ] && redis=(env "TALLY_REDIS_URL=$BENCH_REDIS")
  # wrk's connections all come from one address: lift the per-address share above them.
  "${redis[@]}" env TALLY_DATABASE_URL="$BENCH_POSTGRES/$DATABASE" TALLY_BIND="127.0.0.1:$1" \
    TALLY_MAX_CONNECTIONS_PER_ADDRESS=1024 \
    TALLY_ADMIN_EMAIL="$ADMIN_EMAIL" TALLY_ADMIN_PASSWORD="$ADMIN_PASSWORD" TALLY_LOG=warn \
    "$BIN" serve >>"$WORK/server-$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 400); do
    curl -fs "http://127.0.0.1:$1/ready" >/dev/null 2>&1 && return
    sleep 0.05
  done
  echo "instance on port $1 did not start:" >&2
  cat "$WORK/server-$1.log" >&2
  exit 1
}

gql() { # token query variables-json
  local auth=()
  [ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
  curl -fs "$URL/graphql" -H 'Content-Type: application/json' "${auth[@]}" \
    -d "$(jq -nc --arg q "$2" --argjson v "$3" '{query: $q, variables: $v}')"
}

member_key() { # email plan → "key account-id"
  local signup token account key
  signup=$(gql "" 'mutation($e:String!){signUp(email:$e,password:"bench password 123",accountName:"Bench"){token user{account{id}}}}' \
    "$(jq -nc --arg e "$1" '{e:$e}')")
  token=$(jq -r .data.signUp.token <<<"$signup")
  account=$(jq -r .data.signUp.user.account.id <<<"$signup")
  key=$(gql "$token" 'mutation{createApiKey(name:"bench"){key}}' '{}' | jq -r .data.createApiKey.key)
  [ "${key#tly_}" != "$key" ] || { echo "could not create a key" >&2; exit 1; }
  if [ "$2" != FREE ]; then
    gql "$ADMIN" "mutation(\$a:ID!){adminSetPlan(accountId:\$a,plan:$2){id}}" "{\"a\":\"$account\"}" >/dev/null
  fi
  echo "$key $account"
}

# CPU seconds (user + system) used so far by the given processes.
cpu_seconds() {
  local ticks=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz}'
}

# Idle and total CPU time of the whole machine so far, in ticks.
machine_ticks() {
  awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat
}

# Runs wrk spread over the instances; prints rps, p99, statuses, the CPU seconds the instances,
# PostgreSQL and wrk used, and how much of the machine's CPU stayed idle.
spread() { # mode key connections duration
  local before_tally before_pg before_machine out
  before_machine=$(machine_ticks)
  before_tally=$(cpu_seconds "${PIDS[@]}")
  before_pg=$(cpu_seconds $(pgrep -x postgres || true))
  local TIMEFORMAT="wrk_cpu=%U %S"
  out=$( { time TALLY_BENCH_MODE="$1" TALLY_BENCH_KEY="$2" TALLY_BENCH_TARGETS="$TARGETS" \
    TALLY_BENCH_TS="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    wrk -t"$THREADS" -c"$3" -d"$4" --latency -s bench/cluster.lua "$URL"; } 2>&1)
  echo "$out" | awk '
    /^Requests\/sec:/ {printf "rps=%s ", $2}
    /^ +99%/ {printf "p99=%s ", $2}
    /^status_/ {printf "%s ", $1}
    /^wrk_cpu=/ {split($0, a, "="); split(a[2], b, " "); printf "cpu_wrk=%.1f ", b[1] + b[2]}'
  printf "cpu_tally=%.1f cpu_postgres=%.1f idle=%s\n" \
    "$(awk -v a="$(cpu_seconds "${PIDS[@]}")" -v b="$before_tally" 'BEGIN {print a - b}')" \
    "$(awk -v a="$(cpu_seconds $(pgrep -x postgres || true))" -v b="$before_pg" 'BEGIN {print a - b}')" \
    "$(echo "$before_machine $(machine_ticks)" | awk '{printf "%d%%", 100 * ($3 - $1) / ($4 - $2)}')"
}

echo "== machine: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== redis: $BENCH_REDIS; wrk: $THREADS threads, $DURATION per run; postgres: $(psql -tA "$BENCH_POSTGRES/postgres" -c 'SHOW server_version')"
for n in $INSTANCES; do
  DATABASE="tally_cluster_bench_$$_$n"
  psql -q "$BENCH_POSTGRES/postgres" -c "CREATE DATABASE $DATABASE" >/dev/null
  TARGETS=""
  for i in $(seq 1 "$n"); do
    port=$(free_port)
    start_instance "$port"
    TARGETS="${TARGETS:+$TARGETS,}127.0.0.1:$port"
  done
  URL="http://${TARGETS%%,*}"
  ADMIN=$(gql "" 'mutation($e:String!,$p:String!){login(email:$e,password:$p){token}}' \
    "$(jq -nc --arg e "$ADMIN_EMAIL" --arg p "$ADMIN_PASSWORD" '{e:$e,p:$p}')" | jq -r .data.login.token)
  gql "$ADMIN" 'mutation{adminUpdatePlan(code:ENTERPRISE,input:{rateLimitPerMinute:1000000}){code}}' '{}' >/dev/null
  gql "$ADMIN" 'mutation{adminUpdatePlan(code:FREE,input:{rateLimitPerMinute:1000000}){code}}' '{}' >/dev/null
  gql "$ADMIN" 'mutation{adminUpdatePlan(code:PRO,input:{rateLimitPerMinute:100}){code}}' '{}' >/dev/null
  read -r BUSY_KEY _ <<<"$(member_key busy@example.com ENTERPRISE)"
  read -r FREE_KEY FREE_ACCOUNT <<<"$(member_key free@example.com FREE)"
  read -r LIMITED_KEY _ <<<"$(member_key limited@example.com PRO)"
  sleep 1 # the plan edits reach every instance

  echo "-- instances=$n"
  for conns in $CONNECTIONS; do
    echo "track  c=$conns $(spread track "$BUSY_KEY" "$conns" "$DURATION")"
    echo "verify c=$conns $(spread verify "$BUSY_KEY" "$conns" "$DURATION")"
  done
  quota=$(spread verify "$FREE_KEY" 64 3s)
  counted=$(psql -tA "$BENCH_POSTGRES/$DATABASE" -c \
    "SELECT COALESCE(SUM(calls), 0) FROM usage_periods WHERE account_id = '$FREE_ACCOUNT'")
  stored=$(psql -tA "$BENCH_POSTGRES/$DATABASE" -c \
    "SELECT COUNT(*) FROM usage_events WHERE account_id = '$FREE_ACCOUNT'")
  echo "quota  FREE (1000): $(grep -o 'status_200=[0-9]*' <<<"$quota" || echo status_200=0) counted=$counted stored=$stored (${quota})"
  # A blocking plan's calls are decided again under the period counter's lock: its verifies,
  # with a quota too large to run out, against the unlimited plan's above.
  gql "$ADMIN" 'mutation{adminUpdatePlan(code:FREE,input:{monthlyQuota:1000000000}){code}}' '{}' >/dev/null
  read -r BLOCKING_KEY _ <<<"$(member_key blocking@example.com FREE)"
  sleep 1
  echo "verify c=64 blocking plan: $(spread verify "$BLOCKING_KEY" 64 "$DURATION")"
  limit=$(spread verify "$LIMITED_KEY" 16 "${LIMIT_SECONDS}s")
  bound=$(awk -v s="$LIMIT_SECONDS" 'BEGIN {printf "%d", 100 + 100 * s / 60 + 1}')
  echo "limit  100/min over ${LIMIT_SECONDS}s: $(grep -o 'status_200=[0-9]*' <<<"$limit" || echo status_200=0) bound=$bound (${limit})"
  stop_instances
done

#!/bin/sh
# Reports one tool use to Tally's POST /api/track, signed with the API key.
#
#   tally-track.sh SKILL_ID TOOL_NAME [HOOK_EVENT]
#
# Environment:
#   TALLY_API_KEY    the key (required)
#   TALLY_URL        the service, default http://127.0.0.1:8080
#   TALLY_EVENT_ID   idempotency id; a random one is made when unset, so a retry of this
#                    script with the same TALLY_EVENT_ID is counted once
#   TALLY_INPUT_SNIPPET, TALLY_OUTPUT_SNIPPET   optional snippets (cut to 1000 characters)
#   TALLY_STRICT=1   exit 1 when the event was not accepted (by default a hook never fails
#                    the editor: problems are reported on stderr and the exit status is 0)
#
# Needs only a POSIX shell, curl and openssl.
set -u

fail() {
    echo "tally-track: $*" >&2
    if [ "${TALLY_STRICT:-0}" = 1 ]; then exit 1; fi
    exit 0
}

[ $# -ge 2 ] || fail "usage: tally-track.sh SKILL_ID TOOL_NAME [HOOK_EVENT]"
[ -n "${TALLY_API_KEY:-}" ] || fail "TALLY_API_KEY is not set"
url="${TALLY_URL:-http://127.0.0.1:8080}"

# JSON string contents: escape backslashes and quotes, drop control characters, cut to $2 chars.
json_string() {
    printf '%s' "$1" | tr -d '\000-\037' | first_chars "$2" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'
}

# The first $1 characters of UTF-8 text. `cut -c` counts bytes on most systems and could split
# a character, which the server refuses as invalid JSON. Byte-wise (LC_ALL=C), a character
# starts at every byte that is not a continuation byte (0x80-0xBF).
first_chars() {
    LC_ALL=C awk -v max="$1" '{
        chars = 0
        for (i = 1; i <= length($0); i++) {
            c = substr($0, i, 1)
            if ((c < "\200" || c >= "\300") && ++chars > max) break
        }
        printf "%s", substr($0, 1, i - 1)
    }'
}

random_id() {
    if [ -r /proc/sys/kernel/random/uuid ]; then
        cat /proc/sys/kernel/random/uuid
    else
        od -An -tx1 -N16 /dev/urandom | tr -d ' \n'
    fi
}

event_id="${TALLY_EVENT_ID:-$(random_id)}"
ts=$(date -u +%Y-%m-%dT%H:%M:%SZ)

body="{\"skill_id\":\"$(json_string "$1" 200)\",\"tool_name\":\"$(json_string "$2" 200)\",\"ts\":\"$ts\",\"event_id\":\"$(json_string "$event_id" 128)\""

# Adds an optional field only when it has a value once cleaned: a field is left out rather than
# sent empty (a blank value may be all control characters, which json_string drops).
add_optional() {
    value=$(json_string "$2" "$3")
    if [ -n "$value" ]; then
        body="$body,\"$1\":\"$value\""
    fi
}
add_optional hook_event "${3:-}" 100
add_optional tool_input_snippet "${TALLY_INPUT_SNIPPET:-}" 1000
add_optional tool_output_snippet "${TALLY_OUTPUT_SNIPPET:-}" 1000
body="$body}"

# HMAC-SHA256 of the exact bytes sent, keyed with the API key.
signature=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$TALLY_API_KEY" | sed 's/^.*= //')

status=$(printf '%s' "$body" | curl -sS -o /dev/null -w '%{http_code}' --max-time 5 \
    -X POST "$url/api/track" \
    -H "Authorization: Bearer $TALLY_API_KEY" \
    -H "Content-Type: application/json" \
    -H "X-Tally-Signature: sha256=$signature" \
    --data-binary @-) || fail "could not reach $url"

[ "$status" = 200 ] || fail "$url/api/track answered $status"
exit 0

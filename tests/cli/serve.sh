#!/usr/bin/env bash
# serve.sh KILN CORPUS TESTS - `kiln serve` on loopback, as SDKs and operators meet it
# (STYLE B8, spec/reliability.md A, L, O): envelopes shaped like the Node and browser SDKs'
# (tests/cli/sdk_envelopes.py) in every encoding and auth form, every rejection with its
# status and reason, each size limit at -1, = and +1, CORS, 429 with Retry-After over the
# queue bound, /health, /metrics, stats_v2, `kiln project create`, SIGTERM and restart,
# span items (span v2 streams, transactions naming a profiler) linked to chunks.
# After the workers run, what is stored and the outcomes must equal what was acknowledged.
set -u
kiln=$1
tests=${3:-$(cd "$(dirname "$0")/.." && pwd)}
helper=$tests/cli/sdk_envelopes.py
for tool in curl python3 gzip; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "ok - # SKIP $tool is not installed (scripts/install-deps.sh)"
        exit 77
    fi
done
# resolve the interpreter once: a version-manager shim costs up to a second per call
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
[ -x "$PY" ] || PY=python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-serve.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
forget() { # a server that has exited is no longer ours to kill (its pid may be reused)
    local keep=() p
    for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    pids=("${keep[@]}")
}
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the source tree
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() {
    fail=$((fail + 1))
    echo "not ok - $1"
    shift
    for l in "$@"; do echo "#   $l"; done
}
check() { if eval "$2"; then ok "$1"; else no "$1"; fi; }
t_start=$(date +%s)
tick() { echo "# --- $1 (at $(($(date +%s) - t_start)) s)"; }
edge() { case $1 in -1) echo "-1" ;; 0) echo "=" ;; *) echo "+$1" ;; esac; }

MiB=$((1024 * 1024))

# ---- servers ----------------------------------------------------------------------------
# start_server NAME DIR [serve options]: starts kiln serve on 127.0.0.1:0 and waits (<= 10 s)
# for its "listening" and DSN lines. Sets SRV (pid), PORT, DSN, KEY, BASE.
start_server() {
    local name=$1 dir=$2
    shift 2
    "$kiln" serve --data "$dir" --listen 127.0.0.1:0 "$@" >"$tmp/$name.out" 2>>"$tmp/$name.err" &
    SRV=$!
    pids+=("$SRV")
    PORT="" DSN=""
    for _ in $(seq 200); do
        if grep -q '^DSN: ' "$tmp/$name.out" 2>/dev/null; then
            PORT=$(sed -n 's|^kiln is listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$tmp/$name.out")
            DSN=$(sed -n 's|^DSN: ||p' "$tmp/$name.out")
            break
        fi
        kill -0 "$SRV" 2>/dev/null || break
        sleep 0.05
    done
    KEY=$(printf '%s' "$DSN" | sed -n 's|^http://\([0-9a-f]\{32\}\)@127\.0\.0\.1:[0-9]*/1$|\1|p')
    BASE=http://127.0.0.1:$PORT
    [ -n "$PORT" ] && [ -n "$KEY" ]
}

# stop_server PID SECONDS: SIGTERM, wait; sets STOP_RC (exit code, or "timeout") and STOP_MS
stop_server() {
    local p=$1 limit=$2 t0 t1
    t0=$(date +%s%N)
    kill -TERM "$p" 2>/dev/null
    STOP_RC=timeout
    for _ in $(seq $((limit * 20))); do
        if ! kill -0 "$p" 2>/dev/null; then
            wait "$p"
            STOP_RC=$?
            forget "$p"
            break
        fi
        sleep 0.05
    done
    t1=$(date +%s%N)
    STOP_MS=$(((t1 - t0) / 1000000))
}

# ---- requests ---------------------------------------------------------------------------
# post FILE URL [curl options]: sets STATUS; body in $tmp/body, headers in $tmp/hdrs
post() {
    local f=$1 url=$2
    shift 2
    STATUS=$(curl -sS --max-time 60 -o "$tmp/body" -D "$tmp/hdrs" -w '%{http_code}' \
        --data-binary @"$f" "$@" "$url" 2>"$tmp/curl.err") || STATUS=${STATUS:-000}
}
json_field() { # json_field FILE python-expression-on-d
    "$PY" -c 'import json,sys
try:
    d = json.load(open(sys.argv[1]))
    print(eval(sys.argv[2]))
except Exception as e:
    print("<unreadable: %s>" % e)' "$1" "$2"
}
reason() { json_field "$tmp/body" 'd["error"]["reason"]'; }
header() { tr -d '\r' <"$tmp/hdrs" | sed -n "s/^$1: //Ip" | head -1; }

# mkenv KIND [options]: a fresh envelope in $tmp/env.bin; its description in $tmp/env.json
mkenv() {
    local kind=$1
    shift
    "$PY" "$helper" "$kind" --out "$tmp/env.bin" "$@" >"$tmp/env.json" || echo '{}' >"$tmp/env.json"
}
eid() { json_field "$tmp/env.json" 'd["event_id"]'; }
pid_of() { json_field "$tmp/env.json" 'd.get("profile_id") or d.get("chunk_id")'; }

# accept NAME URL [curl options]: post $tmp/env.bin, expect 200 {"id": <event_id>}, and
# record the envelope in $LEDGER, the list of what must be stored
accept() {
    local name=$1 url=$2 want got
    shift 2
    post "$tmp/env.bin" "$url" "$@"
    want=$(eid)
    got=$(json_field "$tmp/body" 'd["id"]')
    if [ "$STATUS" = 200 ] && [ "$got" = "$want" ]; then
        ok "$name: 200 {\"id\":\"$want\"}"
        cat "$tmp/env.json" >>"$LEDGER"
    else
        no "$name: 200 with the envelope's event id" "status $STATUS, body $(head -c 300 "$tmp/body")" \
            "curl: $(head -c 200 "$tmp/curl.err")"
    fi
}

# reject NAME STATUS REASON URL [curl options]: post $tmp/env.bin, expect the status and the
# JSON reason (REASON "-" skips the reason); the envelope's profile must never be stored
reject() {
    local name=$1 want_status=$2 want_reason=$3 url=$4 got
    shift 4
    pid_of >>"$tmp/never.txt"
    post "$tmp/env.bin" "$url" "$@"
    got=$(reason)
    if [ "$STATUS" = "$want_status" ] && { [ "$want_reason" = - ] || [ "$got" = "$want_reason" ]; }; then
        ok "$name: $STATUS $got"
    else
        no "$name: $want_status $want_reason" "got $STATUS, body $(head -c 300 "$tmp/body")"
    fi
}

# outcomes_of DIR > file ; profiles_of DIR > file
outcomes_of() { "$kiln" outcomes --data "$1"; }
profiles_of() { "$kiln" profiles --data "$1"; }

# items_recorded FILE: one outcome per item in the categories profile, profile_chunk(_ui)
items_recorded() {
    "$PY" -c 'import json,sys
n = 0
for l in open(sys.argv[1]):
    if l.strip():
        r = json.loads(l)
        if r["category"] in ("profile", "profile_chunk", "profile_chunk_ui"):
            n += r["quantity"]
print(n)' "$1"
}
items_expected() { # one per ledger line
    if [ -f "$1" ]; then grep -c . "$1"; else echo 0; fi
}

# settle DIR WANT [SECONDS]: poll `kiln outcomes` until WANT items have an outcome and the
# count has not changed for 0.5 s (bounded: SECONDS, default 20). Sets SETTLED.
settle() {
    local dir=$1 want=$2 last=-1 same=0
    SETTLED=0
    for _ in $(seq $((${3:-20} * 10))); do
        outcomes_of "$dir" >"$tmp/settle.jsonl" 2>/dev/null
        SETTLED=$(items_recorded "$tmp/settle.jsonl")
        if [ "$SETTLED" -ge "$want" ] && [ "$SETTLED" = "$last" ]; then
            same=$((same + 1))
            [ "$same" -ge 5 ] && return 0
        else
            same=0
        fi
        last=$SETTLED
        sleep 0.1
    done
    return 1
}

# queue_depth: kiln_queue_depth{unit="records"} from /metrics
queue_depth() {
    curl -s --max-time 5 "$BASE/metrics" | sed -n 's/^kiln_queue_depth{unit="records"} \([0-9.]*\)$/\1/p' | head -1
}
# wait_queue_empty SECONDS: polls until the queue depth is 0
wait_queue_empty() {
    local d
    for _ in $(seq $(($1 * 10))); do
        d=$(queue_depth)
        [ "${d%.*}" = 0 ] && return 0
        sleep 0.1
    done
    return 1
}

: >"$tmp/ledger.jsonl"
: >"$tmp/never.txt"
LEDGER=$tmp/ledger.jsonl # accept() appends here
data=$tmp/data
if ! start_server main "$data" --workers 2; then
    no "kiln serve starts on 127.0.0.1:0 and prints its port and DSN" "$(cat "$tmp/main.out" "$tmp/main.err")"
    echo "$pass passed, $fail failed"
    exit 1
fi
ok "kiln serve starts on 127.0.0.1:0 and prints port $PORT and the DSN"
MAIN=$SRV
Q="sentry_key=$KEY&sentry_version=7"
NODE_Q="$Q&sentry_client=sentry.javascript.node%2F8.55.0"
BROWSER_Q="$Q&sentry_client=sentry.javascript.browser%2F8.55.0"
URL=$BASE/api/1/envelope/
CT=(-H 'Content-Type: application/x-sentry-envelope')

# ---- 1. every shape, encoding and auth form ---------------------------------------------------
tick "every shape, encoding and auth form"
mkenv node
accept "node SDK envelope, key in the query, plain body" "$URL?$NODE_Q" "${CT[@]}"
mkenv node
gzip -c "$tmp/env.bin" >"$tmp/env.gz" && mv "$tmp/env.gz" "$tmp/env.bin"
accept "node SDK envelope, Content-Encoding: gzip" "$URL?$NODE_Q" "${CT[@]}" -H 'Content-Encoding: gzip'
mkenv node
accept "node SDK envelope, chunked body" "$URL?$NODE_Q" "${CT[@]}" -H 'Transfer-Encoding: chunked'
mkenv node
gzip -c "$tmp/env.bin" >"$tmp/env.gz" && mv "$tmp/env.gz" "$tmp/env.bin"
accept "node SDK envelope, gzip and chunked" "$URL?$NODE_Q" "${CT[@]}" -H 'Content-Encoding: gzip' \
    -H 'Transfer-Encoding: chunked'
mkenv node
"$PY" -c 'import sys, zlib; d = open(sys.argv[1], "rb").read(); open(sys.argv[1], "wb").write(zlib.compress(d))' "$tmp/env.bin"
accept "node SDK envelope, Content-Encoding: deflate (zlib)" "$URL?$NODE_Q" "${CT[@]}" -H 'Content-Encoding: deflate'
mkenv node
"$PY" -c 'import sys, zlib; c = zlib.compressobj(6, zlib.DEFLATED, -15); d = open(sys.argv[1], "rb").read(); open(sys.argv[1], "wb").write(c.compress(d) + c.flush())' "$tmp/env.bin"
accept "node SDK envelope, Content-Encoding: deflate (raw)" "$URL?$NODE_Q" "${CT[@]}" -H 'Content-Encoding: deflate'
if command -v zstd >/dev/null 2>&1; then
    mkenv node
    zstd -q -c "$tmp/env.bin" >"$tmp/env.zst" && mv "$tmp/env.zst" "$tmp/env.bin"
    accept "node SDK envelope, Content-Encoding: zstd" "$URL?$NODE_Q" "${CT[@]}" -H 'Content-Encoding: zstd'
else
    ok "node SDK envelope, Content-Encoding: zstd # SKIP zstd is not installed"
fi
mkenv node
accept "Content-Encoding: UTF-8 is ignored (sentry-ruby, sentry-java send it)" "$URL?$NODE_Q" "${CT[@]}" \
    -H 'Content-Encoding: UTF-8'
mkenv node
accept "auth by X-Sentry-Auth" "$URL" "${CT[@]}" \
    -H "X-Sentry-Auth: Sentry sentry_key=$KEY, sentry_version=7, sentry_client=sentry.javascript.node/8.55.0"
mkenv node
accept "auth by Authorization: Sentry" "$URL" "${CT[@]}" -H "Authorization: Sentry sentry_key=$KEY, sentry_version=7"
mkenv node
accept "auth by Authorization: Basic (key as user name)" "$URL" "${CT[@]}" -u "$KEY:"
mkenv node --dsn "$DSN"
accept "auth by the envelope header's dsn alone" "$URL" "${CT[@]}"
mkenv node --dsn "$DSN"
accept "envelope dsn agreeing with the query key" "$URL?$NODE_Q" "${CT[@]}"
mkenv browser --dsn "$DSN"
accept "browser SDK envelope: text/plain, key in the query, dsn in the header" "$URL?$BROWSER_Q" \
    -H 'Content-Type: text/plain;charset=UTF-8' -H 'Origin: https://shop.example.com'
check "browser answer carries Access-Control-Allow-Origin" "[ \"\$(header Access-Control-Allow-Origin)\" = '*' ]"
check "browser answer exposes Retry-After and X-Sentry-Rate-Limits" \
    "header Access-Control-Expose-Headers | grep -qi 'retry-after' && header Access-Control-Expose-Headers | grep -qi 'x-sentry-rate-limits'"
mkenv browser --dsn "$DSN" --gzip
accept "browser SDK envelope, gzip" "$URL?$BROWSER_Q" -H 'Content-Type: text/plain;charset=UTF-8' \
    -H 'Content-Encoding: gzip'
mkenv chunk
accept "profile_chunk (v2, item header platform node)" "$URL?$NODE_Q" "${CT[@]}"
mkenv chunk-ui
accept "profile_chunk (v2, item header platform javascript)" "$URL?$BROWSER_Q" -H 'Content-Type: text/plain;charset=UTF-8'
mkenv chunk-mismatch
accept "profile_chunk whose item header names another platform kind (acknowledged)" "$URL?$NODE_Q" "${CT[@]}"
mkenv node-invalid
accept "profile with a single sample (acknowledged, invalid later)" "$URL?$NODE_Q" "${CT[@]}"
mkenv node-truncated
accept "profile item cut short without a length (framing is fine: acknowledged, invalid later)" "$URL?$NODE_Q" "${CT[@]}"

# Relay's message to Sentry (spec §4, msgpack), the bridge for a Relay or Kafka consumer
RELAY_URL=$BASE/api/1/relay-message/?$NODE_Q
MP=(-H 'Content-Type: application/x-msgpack')
mkenv relay-message
post "$tmp/env.bin" "$RELAY_URL" "${MP[@]}"
check "relay message for the key's project: 200" "[ '$STATUS' = 200 ]" && cat "$tmp/env.json" >>"$LEDGER"
mkenv relay-message --gzip
post "$tmp/env.bin" "$RELAY_URL" "${MP[@]}" -H 'Content-Encoding: gzip'
check "relay message, Content-Encoding: gzip: 200" "[ '$STATUS' = 200 ]" && cat "$tmp/env.json" >>"$LEDGER"
mkenv relay-message --project 99
reject "relay message for another project than the key's" 403 auth.project_rejected "$RELAY_URL" "${MP[@]}"
mkenv relay-message --org 2
reject "relay message for another organization than the key's" 403 auth.project_rejected "$RELAY_URL" "${MP[@]}"
mkenv relay-message
head -c 200 "$tmp/env.bin" >"$tmp/env.cut" && mv "$tmp/env.cut" "$tmp/env.bin"
reject "relay message cut short" 400 msgpack.malformed "$RELAY_URL" "${MP[@]}"
mkenv relay-message
reject "relay message without a key" 401 auth.missing "$BASE/api/1/relay-message/" "${MP[@]}"

# ---- 2. rejections: status and reason ---------------------------------------------------------
tick "rejections: status and reason"
mkenv node
reject "no auth at all" 401 auth.bad_envelope "$URL" "${CT[@]}"
mkenv node
reject "query key and X-Sentry-Auth together" 401 auth.multiple "$URL?$NODE_Q" "${CT[@]}" \
    -H "X-Sentry-Auth: Sentry sentry_key=$KEY, sentry_version=7"
mkenv node
reject "X-Sentry-Auth and Authorization together" 401 auth.multiple "$URL" "${CT[@]}" \
    -H "X-Sentry-Auth: Sentry sentry_key=$KEY, sentry_version=7" -H "Authorization: Sentry sentry_key=$KEY"
mkenv node
reject "X-Sentry-Auth without a key" 401 auth.bad_header "$URL" "${CT[@]}" -H "X-Sentry-Auth: Sentry sentry_version=7"
mkenv node
reject "malformed key (not 32 characters)" 400 auth.bad_key "$URL?sentry_key=abc123&sentry_version=7" "${CT[@]}"
mkenv node
reject "sentry_version 8" 400 auth.unsupported_version "$URL?sentry_key=$KEY&sentry_version=8" "${CT[@]}"
mkenv node
reject "unknown key" 403 auth.project_rejected "$URL?sentry_key=0123456789abcdef0123456789abcdef&sentry_version=7" "${CT[@]}"
mkenv node
reject "URL project id other than the key's" 403 auth.project_rejected "$BASE/api/7/envelope/?$NODE_Q" "${CT[@]}"
mkenv node
reject "URL project id not a number" 400 auth.bad_project "$BASE/api/abc/envelope/?$NODE_Q" "${CT[@]}"
mkenv node --dsn "http://0123456789abcdef0123456789abcdef@127.0.0.1:$PORT/1"
reject "envelope dsn with another key than the query's" 400 auth.header_mismatch "$URL?$NODE_Q" "${CT[@]}"
mkenv node --dsn "http://$KEY@127.0.0.1:$PORT/7"
reject "envelope dsn naming another project than the URL" 400 auth.header_mismatch "$URL" "${CT[@]}"
printf 'this is not an envelope\n' >"$tmp/env.bin"
echo '{}' >"$tmp/env.json"
reject "malformed envelope" 400 envelope.malformed "$URL?$NODE_Q" "${CT[@]}"
mkenv padded-profile --size 8000
"$PY" -c 'import sys; p = sys.argv[1]; d = open(p, "rb").read(); open(p, "wb").write(d[:-100])' "$tmp/env.bin"
reject "envelope whose item \"length\" runs past the end" 400 envelope.malformed "$URL?$NODE_Q" "${CT[@]}"
: >"$tmp/env.bin"
reject "empty body" 400 - "$URL?$NODE_Q" "${CT[@]}"
mkenv node
reject "Content-Encoding: br (unsupported)" 415 envelope.unsupported_encoding "$URL?$NODE_Q" "${CT[@]}" -H 'Content-Encoding: br'
mkenv node
reject "Content-Encoding: gzip on a body that is not gzip" 400 envelope.bad_compression "$URL?$NODE_Q" "${CT[@]}" \
    -H 'Content-Encoding: gzip'
mkenv node
reject "GET on the envelope endpoint" 405 http.method_not_allowed "$URL?$NODE_Q" -X GET
mkenv node
reject "unknown path" 404 http.not_found "$BASE/api/1/store/nothing-here/?$NODE_Q" "${CT[@]}"

# HTTP framing abuse (nginx-tests body_chunked.t): raw requests on a socket
"$PY" - "$PORT" "$KEY" >"$tmp/raw.txt" 2>&1 <<'PY'
import socket, sys
port, key = int(sys.argv[1]), sys.argv[2]
path = "/api/1/envelope/?sentry_key=%s&sentry_version=7" % key
env = b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}\n{"type":"client_report"}\n{}'
def raw(head, body=b"", close_after=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(head + body)
    if close_after:
        s.shutdown(socket.SHUT_WR)
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
            if b"\r\n\r\n" in data and close_after is False and len(data) > 12:
                # an answer arrived; read what is left of it briefly
                s.settimeout(0.5)
    except socket.timeout:
        pass
    s.close()
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return line.split(" ")[1] if line.startswith("HTTP/1.1 ") else "none"
cl = str(len(env)).encode()
print("two_cl", raw(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
                    + cl + b"\r\nContent-Length: " + str(len(env) + 1).encode() + b"\r\n\r\n", env))
print("cl_te", raw(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
                   + cl + b"\r\nTransfer-Encoding: chunked\r\n\r\n", b"%x\r\n" % len(env) + env + b"\r\n0\r\n\r\n"))
print("same_cl_twice", raw(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
                           + cl + b"\r\nContent-Length: " + cl + b"\r\n\r\n", env))
print("truncated", raw(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
                       + str(len(env) + 100).encode() + b"\r\n\r\n", env, close_after=True))
print("bad_chunk", raw(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n", b"zz\r\n" + env + b"\r\n0\r\n\r\n"))
PY
rawv() { sed -n "s/^$1 //p" "$tmp/raw.txt"; }
check "two different Content-Length headers: 400" "[ \"\$(rawv two_cl)\" = 400 ]"
check "Content-Length together with Transfer-Encoding: 400" "[ \"\$(rawv cl_te)\" = 400 ]"
check "the same Content-Length twice is accepted" "[ \"\$(rawv same_cl_twice)\" = 200 ]"
check "a body shorter than its Content-Length is never acknowledged" "[ \"\$(rawv truncated)\" != 200 ]"
check "a bad chunk size is refused with 400" "[ \"\$(rawv bad_chunk)\" = 400 ]"
check "the server survived the framing abuse" "curl -s --max-time 5 -o /dev/null -w '%{http_code}' $BASE/health | grep -q 200"
[ "$fail" -gt 0 ] && sed 's/^/#   raw: /' "$tmp/raw.txt"

# ---- 3. limits at -1, = and +1 ----------------------------------------------------------------
tick "limits at -1, = and +1"
# Body as received and decoded: 200 MiB (Relay's max_envelope_size; kiln has no option to
# lower it, and at these speeds on loopback the real limit is cheap to test). The envelopes
# are attachments only: acknowledged, not queued.
LIM=$((200 * MiB))
for d in -1 0 1; do
    n=$((LIM + d))
    "$PY" "$helper" attachments --size "$n" --out "$tmp/big.bin" >/dev/null
    want=200 wr=
    [ "$d" = 1 ] && want=413 wr=http.body_too_large
    post "$tmp/big.bin" "$URL?$NODE_Q" "${CT[@]}"
    check "identity body of 200 MiB $(edge "$d") ($n bytes): $want $wr" \
        "[ '$STATUS' = $want ] && { [ -z '$wr' ] || [ \"\$(reason)\" = '$wr' ]; }"
    post "$tmp/big.bin" "$URL?$NODE_Q" "${CT[@]}" -H 'Transfer-Encoding: chunked'
    check "chunked body of 200 MiB $(edge "$d") ($n bytes): $want $wr" \
        "[ '$STATUS' = $want ] && { [ -z '$wr' ] || [ \"\$(reason)\" = '$wr' ]; }"
    rm -f "$tmp/big.bin"
    "$PY" "$helper" attachments --size "$n" --gzip --out "$tmp/big.gz" >/dev/null
    [ "$d" = 1 ] && wr=envelope.too_large
    post "$tmp/big.gz" "$URL?$NODE_Q" "${CT[@]}" -H 'Content-Encoding: gzip'
    check "gzip body decoding to 200 MiB $(edge "$d") ($(stat -c %s "$tmp/big.gz") bytes on the wire): $want $wr" \
        "[ '$STATUS' = $want ] && { [ -z '$wr' ] || [ \"\$(reason)\" = '$wr' ]; }"
    rm -f "$tmp/big.gz"
done
# a gzip bomb far past the limit (1 GiB of zeros, ~1 MB on the wire) is cut off, not inflated
"$PY" -c 'import sys, zlib
c = zlib.compressobj(9, zlib.DEFLATED, 31)
z = bytes(1 << 20)
with open(sys.argv[1], "wb") as f:
    for _ in range(1024):
        f.write(c.compress(z))
    f.write(c.flush())' "$tmp/bomb.gz"
post "$tmp/bomb.gz" "$URL?$NODE_Q" "${CT[@]}" -H 'Content-Encoding: gzip'
check "gzip bomb (1 GiB decoded): 413 envelope.too_large" "[ '$STATUS' = 413 ] && [ \"\$(reason)\" = envelope.too_large ]"
rm -f "$tmp/bomb.gz"
# Content-Length over the limit is refused from the header, before any body byte
"$PY" - "$PORT" "$KEY" "$((LIM + 1))" >"$tmp/raw2.txt" 2>&1 <<'PY'
import socket, sys
port, key, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(("POST /api/1/envelope/?sentry_key=%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
           % (key, n)).encode())
data = b""
try:
    while b"\r\n\r\n" not in data:
        b = s.recv(4096)
        if not b:
            break
        data += b
except socket.timeout:
    pass
print(data.split(b"\r\n", 1)[0].decode(errors="replace"))
PY
check "Content-Length of 200 MiB + 1 answered 413 before the body is sent" "grep -q '^HTTP/1.1 413' '$tmp/raw2.txt'"

# profile item: 50 MiB (Relay's max_profile_size); at and under the limit it is a valid
# profile (padded with spaces) that must be stored
PLIM=$((50 * MiB))
for d in -1 0 1; do
    n=$((PLIM + d))
    mkenv padded-profile --size "$n"
    if [ "$d" = 1 ]; then
        reject "profile item of 50 MiB +1 ($n bytes)" 413 envelope.too_large "$URL?$NODE_Q" "${CT[@]}"
    else
        accept "profile item of 50 MiB $(edge "$d") ($n bytes)" "$URL?$NODE_Q" "${CT[@]}"
    fi
done
rm -f "$tmp/env.bin"
# transaction item: 1 MiB (max_event_size)
ELIM=$MiB
for d in -1 0 1; do
    n=$((ELIM + d))
    mkenv event-item --size "$n"
    echo '{}' >"$tmp/env.json"
    post "$tmp/env.bin" "$URL?$NODE_Q" "${CT[@]}"
    if [ "$d" = 1 ]; then
        check "transaction item of 1 MiB +1: 413 envelope.too_large" "[ '$STATUS' = 413 ] && [ \"\$(reason)\" = envelope.too_large ]"
    else
        check "transaction item of 1 MiB $(edge "$d"): 200" "[ '$STATUS' = 200 ]"
    fi
done
# items per envelope: 1000
for n in 999 1000 1001; do
    mkenv items --count "$n"
    post "$tmp/env.bin" "$URL?$NODE_Q" "${CT[@]}"
    if [ "$n" = 1001 ]; then
        check "envelope of 1001 items: 413 envelope.too_large" "[ '$STATUS' = 413 ] && [ \"\$(reason)\" = envelope.too_large ]"
    else
        check "envelope of $n items: 200" "[ '$STATUS' = 200 ]"
    fi
done

# ---- 4. CORS preflight ------------------------------------------------------------------------
tick "CORS preflight"
curl -s --max-time 5 -o "$tmp/body" -D "$tmp/hdrs" -w '%{http_code}' -X OPTIONS \
    -H 'Origin: https://shop.example.com' -H 'Access-Control-Request-Method: POST' \
    -H 'Access-Control-Request-Headers: content-type, sentry-trace, baggage' \
    "$URL?$BROWSER_Q" >"$tmp/status"
check "CORS preflight OPTIONS /api/1/envelope/: 200" "[ \"\$(cat '$tmp/status')\" = 200 ]"
check "preflight: Access-Control-Allow-Origin: *" "[ \"\$(header Access-Control-Allow-Origin)\" = '*' ]"
check "preflight: Access-Control-Allow-Methods has POST" "header Access-Control-Allow-Methods | grep -q POST"
check "preflight: Access-Control-Allow-Headers has content-type, x-sentry-auth, sentry-trace, baggage, content-encoding" \
    "h=\$(header Access-Control-Allow-Headers); for x in content-type x-sentry-auth sentry-trace baggage content-encoding; do echo \"\$h\" | grep -qi \"\$x\" || exit 1; done"
check "preflight: Access-Control-Max-Age set" "[ -n \"\$(header Access-Control-Max-Age)\" ]"

# ---- 5. after the workers ran: stored profiles and outcomes equal what was acknowledged -------
tick "after the workers ran: stored profiles and outcomes equal what was acknowledged"
want_items=$(items_expected "$tmp/ledger.jsonl")
if settle "$data" "$want_items"; then
    ok "workers recorded an outcome for each of the $want_items acknowledged items (within the wait)"
else
    no "workers recorded an outcome for each of the $want_items acknowledged items" "recorded $SETTLED"
fi
outcomes_of "$data" >"$tmp/outcomes.jsonl"
profiles_of "$data" >"$tmp/profiles.jsonl"
if "$PY" "$helper" check --ledger "$tmp/ledger.jsonl" --outcomes "$tmp/outcomes.jsonl" \
    --profiles "$tmp/profiles.jsonl" --never "$tmp/never.txt" >"$tmp/check.txt"; then
    ok "stored profiles and outcomes match the $want_items acknowledged items exactly"
else
    no "stored profiles and outcomes match the acknowledged items exactly" "$(cat "$tmp/check.txt")"
fi
check "the single-sample profile: one invalid profile and one invalid profile_indexed, reason profiling_not_enough_samples" \
    "[ \$(grep -c '\"outcome\":\"invalid\",\"reason\":\"profiling_not_enough_samples\",\"category\":\"profile\",\"quantity\":1}' '$tmp/outcomes.jsonl') = 1 ] &&
     [ \$(grep -c '\"outcome\":\"invalid\",\"reason\":\"profiling_not_enough_samples\",\"category\":\"profile_indexed\",\"quantity\":1}' '$tmp/outcomes.jsonl') = 1 ]"
check "the mismatched chunk: one invalid profile_chunk, reason profiling_invalid_profile_type" \
    "[ \$(grep -c '\"outcome\":\"invalid\",\"reason\":\"profiling_invalid_profile_type\",\"category\":\"profile_chunk\",\"quantity\":1}' '$tmp/outcomes.jsonl') = 1 ]"
check "the queue is empty once everything is processed" "wait_queue_empty 10"

# ---- 6. /health, /metrics, stats_v2 -----------------------------------------------------------
tick "/health, /metrics, stats_v2"
curl -s --max-time 5 -o "$tmp/body" -w '%{http_code}' "$BASE/health" >"$tmp/status"
check "GET /health: 200 {\"status\":\"ok\"}" "[ \"\$(cat '$tmp/status')\" = 200 ] && [ \"\$(json_field '$tmp/body' 'd[\"status\"]')\" = ok ]"
curl -s --max-time 5 -o "$tmp/metrics.txt" -w '%{http_code}' "$BASE/metrics" >"$tmp/status"
check "GET /metrics: 200 with kiln_outcomes_total" "[ \"\$(cat '$tmp/status')\" = 200 ] && grep -q '^kiln_outcomes_total{' '$tmp/metrics.txt'"
check "/metrics counts ingest rejections by reason" "grep -q '^kiln_ingest_rejected_total{reason=\"auth.multiple\"} 2' '$tmp/metrics.txt'"
check "/metrics kiln_outcomes_total equals kiln outcomes" "\"\$PY\" - '$tmp/metrics.txt' '$tmp/outcomes.jsonl' <<'PY'
import json, re, sys
m = {}
for l in open(sys.argv[1]):
    x = re.match(r'kiln_outcomes_total\{(.*)\} (\S+)$', l)
    if x:
        lab = dict(re.findall(r'(\w+)=\"([^\"]*)\"', x.group(1)))
        k = (lab['outcome'], lab.get('reason') or None, lab['category'])
        m[k] = m.get(k, 0) + float(x.group(2))
o = {}
for l in open(sys.argv[2]):
    r = json.loads(l)
    k = (r['outcome'], r['reason'], r['category'])
    o[k] = o.get(k, 0) + r['quantity']
assert m == o, (m, o)
PY"
curl -s --max-time 5 -o "$tmp/stats.json" -w '%{http_code}' \
    "$BASE/api/0/organizations/default/stats_v2/?field=sum(quantity)&groupBy=outcome&groupBy=category&statsPeriod=24h" >"$tmp/status"
check "GET stats_v2 grouped by outcome and category: 200" "[ \"\$(cat '$tmp/status')\" = 200 ]"
check "stats_v2 totals equal kiln outcomes" "\"\$PY\" - '$tmp/stats.json' '$tmp/outcomes.jsonl' <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
got = {}
for g in s['groups']:
    k = (g['by']['outcome'], g['by']['category'])
    got[k] = got.get(k, 0) + g['totals']['sum(quantity)']
    assert sum(g['series']['sum(quantity)']) == g['totals']['sum(quantity)'], g
want = {}
for l in open(sys.argv[2]):
    r = json.loads(l)
    k = (r['outcome'], r['category'])
    want[k] = want.get(k, 0) + r['quantity']
assert got == want, (got, want)
PY"
curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$BASE/api/0/organizations/nope/stats_v2/?field=sum(quantity)" >"$tmp/status"
check "stats_v2 of an unknown organization: 404" "[ \"\$(cat '$tmp/status')\" = 404 ]"

# ---- 7. a second project ----------------------------------------------------------------------
tick "a second project"
"$kiln" project --data "$data" --host "127.0.0.1:$PORT" create demo >"$tmp/demo.json" 2>"$tmp/demo.err"
rc=$?
DEMO_KEY=$(json_field "$tmp/demo.json" 'd["public_key"]')
DEMO_DSN=$(json_field "$tmp/demo.json" 'd["dsn"]')
DEMO_ID=$(printf '%s' "$DEMO_DSN" | sed -n 's|.*/\([0-9][0-9]*\)$|\1|p')
check "kiln project create demo (while the server runs) prints a key and a DSN" \
    "[ $rc = 0 ] && [ \${#DEMO_KEY} = 32 ] && [ -n '$DEMO_ID' ] && [ '$DEMO_ID' != 1 ]"
check "kiln project list shows demo" "'$kiln' project --data '$data' list | grep -q '\"slug\":\"demo\"'"
: >"$tmp/ledger2.jsonl"
mkenv node
post "$tmp/env.bin" "$BASE/api/$DEMO_ID/envelope/?sentry_key=$DEMO_KEY&sentry_version=7" "${CT[@]}"
check "demo's key on demo's project id: 200" "[ '$STATUS' = 200 ]" && cat "$tmp/env.json" >>"$tmp/ledger2.jsonl"
mkenv node --dsn "$DEMO_DSN"
post "$tmp/env.bin" "$BASE/api/$DEMO_ID/envelope/" -H 'Content-Type: text/plain;charset=UTF-8'
check "demo's DSN in the envelope header alone: 200" "[ '$STATUS' = 200 ]" && cat "$tmp/env.json" >>"$tmp/ledger2.jsonl"
mkenv node
reject "demo's key on project 1's URL" 403 auth.project_rejected "$URL?sentry_key=$DEMO_KEY&sentry_version=7" "${CT[@]}"
mkenv node
reject "project 1's key on demo's URL" 403 auth.project_rejected "$BASE/api/$DEMO_ID/envelope/?$NODE_Q" "${CT[@]}"
cat "$tmp/ledger.jsonl" "$tmp/ledger2.jsonl" >"$tmp/ledger_all.jsonl"
settle "$data" "$(items_expected "$tmp/ledger_all.jsonl")"
outcomes_of "$data" >"$tmp/outcomes.jsonl"
profiles_of "$data" >"$tmp/profiles.jsonl"
if "$PY" "$helper" check --project "${DEMO_ID:-2}" --ledger "$tmp/ledger2.jsonl" --outcomes "$tmp/outcomes.jsonl" \
    --profiles "$tmp/profiles.jsonl" >"$tmp/check.txt"; then
    ok "demo's two profiles are stored under project $DEMO_ID with their outcomes"
else
    no "demo's profiles are stored under its project with their outcomes" "$(cat "$tmp/check.txt")"
fi
if "$PY" "$helper" check --ledger "$tmp/ledger.jsonl" --outcomes "$tmp/outcomes.jsonl" \
    --profiles "$tmp/profiles.jsonl" --never "$tmp/never.txt" >"$tmp/check.txt"; then
    ok "project 1 is unchanged by demo's traffic"
else
    no "project 1 is unchanged by demo's traffic" "$(cat "$tmp/check.txt")"
fi

# ---- 8. the same envelope twice (an SDK retry after a lost answer) ----------------------------
tick "the same envelope twice (an SDK retry after a lost answer)"
# Relay acknowledges both; kiln must store the profile once, record an outcome for each
# item (spec O: one per item), and retire both queue records.
mkenv node
before=$(items_recorded "$tmp/outcomes.jsonl")
post "$tmp/env.bin" "$URL?$NODE_Q" "${CT[@]}"
s1=$STATUS
post "$tmp/env.bin" "$URL?$NODE_Q" "${CT[@]}"
check "the same envelope posted twice: 200 both times" "[ '$s1' = 200 ] && [ '$STATUS' = 200 ]"
dup_id=$(pid_of)
settle "$data" $((before + 2)) 5
outcomes_of "$data" >"$tmp/outcomes.jsonl"
profiles_of "$data" >"$tmp/profiles.jsonl"
check "a resent profile is stored once" "[ \$(grep -c '\"profile_id\":\"$dup_id\"' '$tmp/profiles.jsonl') = 1 ]"
after=$(items_recorded "$tmp/outcomes.jsonl")
if [ "$after" = $((before + 2)) ]; then
    ok "a resent profile gets an outcome for each copy (2 profile outcomes)"
else
    no "a resent profile gets an outcome for each copy (2 profile outcomes)" \
        "profile outcomes went from $before to $after" \
        "$(grep "$dup_id\|store commit failed" "$tmp/main.err" | tail -2)"
fi
if wait_queue_empty 2; then
    ok "a resent profile leaves no record stuck in the queue (kiln_queue_depth 0)"
else
    no "a resent profile leaves no record stuck in the queue (kiln_queue_depth 0)" \
        "kiln_queue_depth{unit=\"records\"} $(queue_depth)"
fi

# ---- 9. SIGTERM and restart -------------------------------------------------------------------
tick "SIGTERM and restart"
stored_before=$(grep -c . "$tmp/profiles.jsonl")
stop_server "$MAIN" 10
check "SIGTERM: exits 0 within 5 s (took ${STOP_MS} ms, exit $STOP_RC)" "[ '$STOP_RC' = 0 ] && [ $STOP_MS -le 5000 ]"
old_key=$KEY
if start_server main2 "$data" --workers 2; then
    ok "restart on the same data directory serves again (port $PORT)"
else
    no "restart on the same data directory serves again" "$(tail -5 "$tmp/main2.err")"
fi
check "the restarted server keeps the project's key" "[ '$KEY' = '$old_key' ]"
mkenv node
accept "a post after the restart" "$BASE/api/1/envelope/?sentry_key=$KEY&sentry_version=7" "${CT[@]}"
settle "$data" $(($(items_recorded "$tmp/outcomes.jsonl") + 1))
profiles_of "$data" >"$tmp/profiles.jsonl"
check "profiles stored before the restart are still there, plus the new one" \
    "[ \$(grep -c . '$tmp/profiles.jsonl') = $((stored_before + 1)) ] && grep -q \"\$(pid_of)\" '$tmp/profiles.jsonl'"
# SIGTERM while a request is half sent: it is still answered, and a 200 means it is kept
mkenv node
"$PY" - "$PORT" "$KEY" "$SRV" "$tmp/env.bin" >"$tmp/inflight.txt" 2>&1 <<'PY'
import os, signal, socket, sys, time
port, key, pid, path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
body = open(path, "rb").read()
s = socket.create_connection(("127.0.0.1", port), timeout=15)
s.sendall(b"POST /api/1/envelope/?sentry_key=%s&sentry_version=7 HTTP/1.1\r\nHost: x\r\n"
          b"Content-Length: %d\r\n\r\n" % (key.encode(), len(body)) + body[:100])
time.sleep(0.3)
os.kill(pid, signal.SIGTERM)
time.sleep(0.5)
try:
    s.sendall(body[100:])
    data = b""
    while b"\r\n\r\n" not in data:
        b = s.recv(4096)
        if not b:
            break
        data += b
    print(data.split(b"\r\n", 1)[0].decode(errors="replace").split(" ")[1] if data else "none")
except OSError as e:
    print("error", e)
PY
inflight=$(head -1 "$tmp/inflight.txt")
check "SIGTERM during a request body: the request is still answered (got $inflight)" \
    "[ '$inflight' = 200 ] || [ '$inflight' = 503 ]"
inflight_id=$(pid_of)
stop_server "$SRV" 15
check "second SIGTERM, with a request in flight: exits 0 (exit $STOP_RC, ${STOP_MS} ms)" "[ '$STOP_RC' = 0 ]"
if [ "$inflight" = 200 ]; then
    start_server main3 "$data" --workers 2
    settle "$data" $(($(items_recorded "$tmp/outcomes.jsonl") + 2)) 10
    profiles_of "$data" >"$tmp/profiles.jsonl"
    check "the profile acknowledged during shutdown is stored (after the next start at the latest)" \
        "grep -q '\"profile_id\":\"$inflight_id\"' '$tmp/profiles.jsonl'"
    stop_server "$SRV" 10
fi

# ---- 10. queue byte bound at -1, = and +1 ------------------------------------------------
tick "queue byte bound at -1, = and +1"
# --queue-max-mb 1: a record is 80 header bytes + the decoded envelope, so an envelope of
# 1 MiB - 80 bytes fills an empty queue exactly; one byte more can never fit: 413
data3=$tmp/data3
: >"$tmp/ledger4.jsonl"
LEDGER=$tmp/ledger4.jsonl
if start_server bytes "$data3" --workers 1 --queue-max-mb 1; then
    for d in -1 0 1; do
        n=$((MiB - 80 + d))
        wait_queue_empty 10
        mkenv padded-total --size "$n"
        if [ "$d" = 1 ]; then
            reject "queue record of 1 MiB +1 (envelope of $n bytes) with --queue-max-mb 1" 413 queue.too_large \
                "$BASE/api/1/envelope/?sentry_key=$KEY&sentry_version=7" "${CT[@]}"
        else
            accept "queue record of 1 MiB $(edge "$d") (envelope of $n bytes) with --queue-max-mb 1" \
                "$BASE/api/1/envelope/?sentry_key=$KEY&sentry_version=7" "${CT[@]}"
        fi
    done
    settle "$data3" "$(items_expected "$tmp/ledger4.jsonl")" 10
    outcomes_of "$data3" >"$tmp/outcomes4.jsonl"
    profiles_of "$data3" >"$tmp/profiles4.jsonl"
    if "$PY" "$helper" check --ledger "$tmp/ledger4.jsonl" --outcomes "$tmp/outcomes4.jsonl" \
        --profiles "$tmp/profiles4.jsonl" --never "$tmp/never.txt" >"$tmp/check.txt"; then
        ok "the two envelopes at the byte bound are stored with their outcomes"
    else
        no "the two envelopes at the byte bound are stored with their outcomes" "$(cat "$tmp/check.txt")"
    fi
    stop_server "$SRV" 10
else
    no "kiln serve --queue-max-mb 1 starts" "$(tail -5 "$tmp/bytes.err")"
fi

# ---- 11. queue bound: 429 with Retry-After ---------------------------------------------------
tick "queue bound: 429 with Retry-After"
# --queue-max-records 1 --workers 1: concurrent posts must meet a full queue; every 200 must
# still be stored, and nothing answered 429 may be stored
data2=$tmp/data2
if start_server small "$data2" --workers 1 --queue-max-records 1; then
    "$PY" - "$PORT" "$KEY" "$tests/cli" >"$tmp/flood.json" 2>"$tmp/flood.err" <<'PY'
import json, random, sys, threading, time
port, key = int(sys.argv[1]), sys.argv[2]
sys.path.insert(0, sys.argv[3])
import sdk_envelopes as se
lock = threading.Lock()
acked, refused, others, retry_after, rate_limits = [], [], [], [], []
seen_429 = threading.Event()
sent = [0]
def worker():
    while True:
        with lock:
            # bounded: at most 600 requests; stop once a 429 was seen and 20 were acknowledged
            if sent[0] >= 600 or (seen_429.is_set() and len(acked) >= 20):
                return
            sent[0] += 1
        time.sleep(random.random() * 0.005)  # let the queue drain now and then
        body, info = se.node_envelope()
        try:
            st, h, b = se.post("127.0.0.1", port, "/api/1/envelope/?sentry_key=%s&sentry_version=7" % key,
                               body, {"Content-Type": "application/x-sentry-envelope"}, timeout=20)
        except Exception as e:
            with lock:
                others.append(str(e))
            continue
        with lock:
            if st == 200:
                acked.append(info)
            elif st == 429:
                refused.append(info["profile_id"])
                retry_after.append(h.get("retry-after"))
                rate_limits.append(h.get("x-sentry-rate-limits"))
                seen_429.set()
                reason = json.loads(b)["error"]["reason"]
                if reason != "queue.full":
                    others.append("429 with reason " + reason)
            else:
                others.append("status %d: %s" % (st, b[:200]))
ts = [threading.Thread(target=worker) for _ in range(8)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps({"acked": acked, "refused": refused, "retry_after": retry_after,
                  "rate_limits": rate_limits, "others": others,
                  "sent": sent[0]}))
PY
    json_field "$tmp/flood.json" '"\n".join(json.dumps(i) for i in d["acked"])' >"$tmp/ledger3.jsonl"
    json_field "$tmp/flood.json" '"\n".join(d["refused"])' >"$tmp/never3.txt"
    n429=$(json_field "$tmp/flood.json" 'len(d["refused"])')
    nack=$(json_field "$tmp/flood.json" 'len(d["acked"])')
    nsent=$(json_field "$tmp/flood.json" 'd["sent"]')
    check "queue over its bound: 429 appears (sent $nsent, 200: $nack, 429: $n429)" "[ '$n429' -ge 1 ] 2>/dev/null"
    check "every 429 carries Retry-After (a positive number of seconds)" \
        "json_field '$tmp/flood.json' 'all(r and r.isdigit() and int(r) > 0 for r in d[\"retry_after\"]) and len(d[\"retry_after\"]) > 0' | grep -q True"
    check "every 429 carries X-Sentry-Rate-Limits (seconds:categories:scope:reason)" \
        "json_field '$tmp/flood.json' 'all(r and r.split(\":\")[0].isdigit() and len(r.split(\":\")) >= 3 for r in d[\"rate_limits\"]) and len(d[\"rate_limits\"]) > 0' | grep -q True"
    check "no answer other than 200 and 429 {queue.full}" "[ \"\$(json_field '$tmp/flood.json' 'len(d[\"others\"])')\" = 0 ]"
    settle "$data2" "$nack"
    outcomes_of "$data2" >"$tmp/outcomes3.jsonl"
    profiles_of "$data2" >"$tmp/profiles3.jsonl"
    if "$PY" "$helper" check --ledger "$tmp/ledger3.jsonl" --outcomes "$tmp/outcomes3.jsonl" \
        --profiles "$tmp/profiles3.jsonl" --never "$tmp/never3.txt" >"$tmp/check.txt"; then
        ok "after the 429s: all $nack acknowledged profiles stored once with their outcomes, none refused stored"
    else
        no "after the 429s: acknowledged profiles stored once, refused ones not" "$(head -20 "$tmp/check.txt")"
    fi
    mkenv node
    accept "the queue accepts again once drained" "$BASE/api/1/envelope/?sentry_key=$KEY&sentry_version=7" "${CT[@]}"
    stop_server "$SRV" 10
else
    no "kiln serve --queue-max-records 1 starts" "$(tail -5 "$tmp/small.err")"
fi

# ---- 12. span items linked to continuous-profiling chunks ------------------------------------
tick "span items linked to continuous-profiling chunks"
# sentry-javascript v10+ streams spans as span v2 items; only the segment span names the UI
# profiler. The spans endpoint must list every valid span with its segment's profiler and
# thread, and each row's chunks_url must fetch that profiler's samples over the span.
data5=$tmp/data5
# spans_of QUERY: GET the spans endpoint into $tmp/spans.json; sets STATUS
spans_of() {
    STATUS=$(curl -s --max-time 10 -o "$tmp/spans.json" -w '%{http_code}' \
        "$BASE/api/0/organizations/default/profiling/spans/?$1")
}
# wait_spans QUERY N: poll until the endpoint lists N spans (<= 10 s)
wait_spans() {
    for _ in $(seq 100); do
        spans_of "$1"
        [ "$STATUS" = 200 ] && [ "$(json_field "$tmp/spans.json" 'len(d["data"])')" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
if start_server spans "$data5" --workers 1; then
    Q5="sentry_key=$KEY&sentry_version=7&sentry_client=sentry.javascript.browser%2F10.22.0"
    NQ5="sentry_key=$KEY&sentry_version=7&sentry_client=sentry.javascript.node%2F8.55.0"
    mkenv spans-v2
    cp "$tmp/env.json" "$tmp/spans_env.json"
    P=$(json_field "$tmp/spans_env.json" 'd["profiler_id"]')
    post "$tmp/env.bin" "$BASE/api/1/envelope/?$Q5" -H 'Content-Type: text/plain;charset=UTF-8'
    check "span v2 stream + profile_chunk (no event_id): 200 {}" "[ '$STATUS' = 200 ] && [ \"\$(cat '$tmp/body')\" = '{}' ]"
    if wait_spans "project=1&profiler_id=$P" 3; then
        ok "the spans endpoint lists the 3 valid spans of the profiler (the broken one skipped)"
    else
        no "the spans endpoint lists the 3 valid spans of the profiler" "status $STATUS: $(head -c 400 "$tmp/spans.json")" \
            "$(grep 'spans' "$tmp/spans.err" | tail -3)"
    fi
    check "children inherit the segment's profiler, segment name, environment and release; thread kept" "\"\$PY\" - '$tmp/spans.json' '$tmp/spans_env.json' <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))['data']
e = json.load(open(sys.argv[2]))
by = {r['span_id']: r for r in d}
assert sorted(by) == sorted(e['span_ids']), (sorted(by), e['span_ids'])
for sid, r in by.items():
    assert r['profiler_id'] == e['profiler_id'] and r['trace_id'] == e['trace_id'], r
    assert r['segment_id'] == e['segment_id'] and r['segment_name'] == '/checkout', r
    assert r['thread_id'] == '0' and r['thread_name'] == 'main', r
    assert r['environment'] == 'production' and r['release'] == 'shop@2.0.0', r
    assert r['project_id'] == 1, r
    assert r['is_segment'] == (sid == e['segment_id']), r
    assert r['parent_span_id'] == (None if sid == e['segment_id'] else e['segment_id']), r
assert [r['start'] for r in d] == sorted((r['start'] for r in d), reverse=True), 'newest first'
PY"
    # the first child: 04 .. 11 hundredths after the chunk's start; its samples are at
    # 0.050, 0.075 and 0.100 s
    C1=$(json_field "$tmp/spans_env.json" 'd["span_ids"][1]')
    CU=$(json_field "$tmp/spans.json" "[r['chunks_url'] for r in d['data'] if r['span_id'] == '$C1'][0]")
    CST=$(curl -s --max-time 10 -o "$tmp/chunk5.json" -w '%{http_code}' "$BASE$CU")
    check "a child span's chunks_url fetches its profiler's chunk: 200 ($CU)" "[ '$CST' = 200 ]"
    check "... with the 3 samples inside the span and the chunk of the same envelope" "\"\$PY\" - '$tmp/chunk5.json' '$tmp/spans_env.json' <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
e = json.load(open(sys.argv[2]))
assert c['debug_chunk_ids'] == [e['chunk_id']], c['debug_chunk_ids']
assert c['chunk']['profiler_id'] == e['profiler_id'], c['chunk'].get('profiler_id')
ts = [s['timestamp'] - e['start'] for s in c['chunk']['profile']['samples']]
assert len(ts) == 3 and all(0.04 <= t <= 0.11 for t in ts), ts
PY"
    spans_of "project=1&profiler_id=$P&transaction=%2Fcheckout&per_page=2"
    check "per_page=2 pages the list: 2 rows and a next_cursor" \
        "[ '$STATUS' = 200 ] && [ \"\$(json_field '$tmp/spans.json' '(len(d[\"data\"]), d[\"next_cursor\"])')\" = '(2, 2)' ]"
    spans_of "project=1&profiler_id=$P&transaction=other"
    check "transaction= filters on the segment name (none for 'other')" \
        "[ '$STATUS' = 200 ] && [ \"\$(json_field '$tmp/spans.json' 'len(d[\"data\"])')\" = 0 ]"
    spans_of "project=1&profiler_id=$P&query=transaction%3A%2Fcheckout%20release%3Ashop%402.0.0%20environment%3Aproduction"
    check "query= searches transaction, release and environment: 3 spans" \
        "[ '$STATUS' = 200 ] && [ \"\$(json_field '$tmp/spans.json' 'len(d[\"data\"])')\" = 3 ]"
    spans_of "project=1&profiler_id=$P&query=release%3Ashop%401.0.0"
    check "query=release:<another release>: none" \
        "[ '$STATUS' = 200 ] && [ \"\$(json_field '$tmp/spans.json' 'len(d[\"data\"])')\" = 0 ]"
    spans_of "project=1&query=platform%3Ajavascript"
    check "query= on a field spans do not have (platform): 400 http.bad_request" \
        "[ '$STATUS' = 400 ] && [ \"\$(json_field '$tmp/spans.json' 'd[\"error\"][\"reason\"]')\" = http.bad_request ]"
    spans_of "profiler_id=nope"
    check "a profiler_id that is not a uuid: 400 http.bad_request" \
        "[ '$STATUS' = 400 ] && [ \"\$(json_field '$tmp/spans.json' 'd[\"error\"][\"reason\"]')\" = http.bad_request ]"
    # an SDK retry of the same envelope: acknowledged, the spans kept once
    post "$tmp/env.bin" "$BASE/api/1/envelope/?$Q5" -H 'Content-Type: text/plain;charset=UTF-8'
    wait_queue_empty 10
    spans_of "project=1&profiler_id=$P"
    check "the same span envelope posted again: 200, still 3 spans" \
        "[ '$STATUS' = 200 ] && [ \"\$(json_field '$tmp/spans.json' 'len(d[\"data\"])')\" = 3 ]"

    "$kiln" query --data "$data5" spans --profiler-id "$P" --query 'release:shop@2.0.0' \
        >"$tmp/qspans.jsonl" 2>"$tmp/qspans.err"
    check "kiln query spans --profiler-id (while the server runs): the same 3 spans" \
        "[ \"\$(wc -l <'$tmp/qspans.jsonl')\" = 3 ] && \"\$PY\" -c 'import json,sys; rows=[json.loads(l) for l in open(sys.argv[1])]; assert all(r[\"profiler_id\"] == sys.argv[2] and \"chunks_url\" not in r for r in rows)' '$tmp/qspans.jsonl' '$P'"
    "$kiln" query --data "$data5" spans --query 'platform:node' >/dev/null 2>"$tmp/qspans.err"
    check "kiln query spans --query platform:...: exit 2 with the reason" \
        "[ \$? = 2 ] && grep -q 'transaction, release and environment' '$tmp/qspans.err'"

    # SDKs v8-v10: a transaction-only envelope names the profiler; the chunk comes alone
    P2=$("$PY" -c 'import uuid; print(uuid.uuid4().hex)')
    S2=$(($(date +%s) - 5))
    mkenv chunk --profiler-id "$P2" --start "$S2"
    post "$tmp/env.bin" "$BASE/api/1/envelope/?$NQ5" "${CT[@]}"
    s_chunk=$STATUS
    mkenv tx-profiler --profiler-id "$P2" --start "$S2"
    cp "$tmp/env.json" "$tmp/tx_env.json"
    post "$tmp/env.bin" "$BASE/api/1/envelope/?$NQ5" "${CT[@]}"
    check "a chunk and a transaction naming its profiler (v8-v10 style): 200, 200" "[ '$s_chunk' = 200 ] && [ '$STATUS' = 200 ]"
    if wait_spans "profiler_id=$P2" 1; then
        ok "the transaction is listed as its profiler's segment span"
    else
        no "the transaction is listed as its profiler's segment span" "status $STATUS: $(head -c 400 "$tmp/spans.json")"
    fi
    check "... named after the transaction, on the trace context's thread" "\"\$PY\" - '$tmp/spans.json' '$tmp/tx_env.json' <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))['data'][0]
e = json.load(open(sys.argv[2]))
assert r['span_id'] == e['span_id'] and r['trace_id'] == e['trace_id'], r
assert r['is_segment'] and r['name'] == 'GET /api/orders' and r['segment_name'] == 'GET /api/orders', r
assert r['thread_id'] == '0' and r['thread_name'] == 'main' and r['environment'] == 'production', r
PY"
    CU=$(json_field "$tmp/spans.json" 'd["data"][0]["chunks_url"]')
    CST=$(curl -s --max-time 10 -o "$tmp/chunk6.json" -w '%{http_code}' "$BASE$CU")
    check "its chunks_url fetches all 11 samples of the chunk" \
        "[ '$CST' = 200 ] && [ \"\$(json_field '$tmp/chunk6.json' 'len(d[\"chunk\"][\"profile\"][\"samples\"])')\" = 11 ]"
    # span streaming without profiling: acknowledged, never queued (nothing could link)
    mkenv spans-v2-unprofiled
    post "$tmp/env.bin" "$BASE/api/1/envelope/?$Q5" -H 'Content-Type: text/plain;charset=UTF-8'
    s_unprof=$STATUS
    wait_queue_empty 10
    curl -s --max-time 5 -o "$tmp/metrics5.txt" "$BASE/metrics"
    check "spans without any profiler id: 200, not queued (no span counted unlinked)" \
        "[ '$s_unprof' = 200 ] && ! grep -q '^kiln_spans_total{result=\"unlinked\"}' '$tmp/metrics5.txt'"
    check "/metrics: span items by type, linked and skipped spans by result" \
        "grep -q '^kiln_envelope_items_total{type=\"span\"} 3' '$tmp/metrics5.txt' &&
         grep -q '^kiln_spans_total{result=\"span.bad_id\"} 2' '$tmp/metrics5.txt' &&
         grep -q '^kiln_spans_total{result=\"linked\"} 7' '$tmp/metrics5.txt'"
    # spans produce no outcomes: only the two chunks' (and the retry's chunk duplicate)
    outcomes_of "$data5" >"$tmp/outcomes5.jsonl"
    check "spans record no outcomes (every category is a profile one)" \
        "! grep -v '\"category\":\"profile' '$tmp/outcomes5.jsonl' | grep -q ."
    stop_server "$SRV" 10
    check "the spans server stops cleanly (exit $STOP_RC)" "[ '$STOP_RC' = 0 ]"
else
    no "kiln serve for the span tests starts" "$(tail -5 "$tmp/spans.err")"
fi

# ---- 13. the in-flight memory budget: 503 at -1, = and +1 ---------------------------------
tick "in-flight memory budget"
# --inflight-max-mb 1: a plain body holds its Content-Length, a gzip'd one its wire bytes and
# then its decoded size; past the budget the answer is 503 http.overloaded with Retry-After
data6=$tmp/data6
: >"$tmp/ledger6.jsonl"
LEDGER=$tmp/ledger6.jsonl
if start_server budget "$data6" --workers 1 --inflight-max-mb 1; then
    BQ="$BASE/api/1/envelope/?sentry_key=$KEY&sentry_version=7"
    for d in -1 0; do
        mkenv padded-total --size $((MiB + d))
        accept "plain envelope of 1 MiB $(edge "$d") with --inflight-max-mb 1" "$BQ" "${CT[@]}"
    done
    mkenv padded-total --size $((MiB + 1))
    reject "plain envelope of 1 MiB +1 with --inflight-max-mb 1" 503 http.overloaded "$BQ" "${CT[@]}"
    check "the 503 carries Retry-After" "[ \"\$(header Retry-After)\" = 1 ]"
    mkenv padded-total --size $((MiB - 100)) --gzip # > 100 bytes on the wire
    reject "gzip'd envelope whose wire + decoded bytes pass 1 MiB" 503 http.overloaded "$BQ" \
        "${CT[@]}" -H 'Content-Encoding: gzip'
    mkenv padded-total --size $((MiB / 2)) --gzip
    accept "gzip'd envelope of 512 KiB decoded (fits)" "$BQ" "${CT[@]}" -H 'Content-Encoding: gzip'
    # every answered request gave its bytes back: the budget is whole again
    mkenv padded-total --size "$MiB"
    accept "after all that, a 1 MiB body fits again (nothing leaked from the budget)" "$BQ" "${CT[@]}"
    settle "$data6" "$(items_expected "$tmp/ledger6.jsonl")" 10
    stop_server "$SRV" 10
else
    no "kiln serve --inflight-max-mb 1 starts" "$(tail -5 "$tmp/budget.err")"
fi

echo "# serve.sh took $(($(date +%s) - t_start)) s"
if [ "$fail" -gt 0 ]; then
    echo "# server errors and warnings (last 10):"
    cat "$tmp"/*.err 2>/dev/null | grep -E 'level=(error|warn)' | tail -10 | sed 's/^/#   /'
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

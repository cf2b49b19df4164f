#!/usr/bin/env bash
# process.sh KILN CORPUS TESTS - `kiln process` as a user runs it: help and usage errors,
# size limits in bounded memory, envelopes (gzip) with the transaction merged, unsampled
# outcomes, speedscope output, Relay's msgpack message.
set -u
kiln=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() { fail=$((fail + 1)); echo "not ok - $1"; }
check() { if eval "$2"; then ok "$1"; else no "$1"; fi; }

# a valid cocoa v1 profile (made up for this test) and its transaction event
cat >"$tmp/profile.json" <<'JSON'
{"version":"1","event_id":"41fed0925670468bb0457f61a74688ec","platform":"cocoa",
 "timestamp":"2022-09-01T09:45:00.000Z",
 "device":{"architecture":"arm64e","is_emulator":false,"locale":"en_US","manufacturer":"Apple","model":"iPhone14,3"},
 "os":{"name":"iOS","version":"16.0","build_number":"19H253"},
 "transaction":{"id":"30976f2ddbe04ac9b6bffe6e35d4710c","name":"placeholder","trace_id":"4b25bc58f14243d8b208d1e22a054164","active_thread_id":"259"},
 "profile":{"samples":[{"stack_id":0,"thread_id":"259","elapsed_since_start_ns":"0"},
                       {"stack_id":1,"thread_id":"259","elapsed_since_start_ns":"10000000"},
                       {"stack_id":0,"thread_id":"259","elapsed_since_start_ns":"20000000"}],
            "stacks":[[0,1],[1]],
            "frames":[{"function":"work","instruction_addr":"0x1000","package":"/private/var/containers/Bundle/Application/X/App.app/App"},
                      {"function":"main","instruction_addr":"0x100"}],
            "thread_metadata":{"259":{"name":"main"}}}}
JSON
cat >"$tmp/tx.json" <<'JSON'
{"type":"transaction","event_id":"30976f2ddbe04ac9b6bffe6e35d4710c","transaction":"MoviesViewController",
 "release":"app@1.0","environment":"production","platform":"cocoa",
 "sdk":{"name":"sentry.cocoa","version":"8.0.0"},
 "start_timestamp":1662025500.0,"timestamp":1662025500.5,
 "contexts":{"trace":{"trace_id":"4b25bc58f14243d8b208d1e22a054164","span_id":"bd2eb23da2beb459","op":"ui.load","status":"ok"}},
 "tags":[["device.class","3"],["os","iOS"]]}
JSON

# help and usage
check "kiln --help lists process" "'$kiln' --help | grep -q '^  process'"
check "kiln process --help documents --envelope" "'$kiln' process --help | grep -q -- '--envelope'"
"$kiln" process --bogus "$tmp/profile.json" >/dev/null 2>&1
check "unknown option exits 2" "[ $? -eq 2 ]"
"$kiln" process "$tmp/missing.json" >/dev/null 2>"$tmp/err"
check "missing file exits 2 with io.read" "[ $? -eq 2 ] && grep -q 'io.read' '$tmp/err'"

# a plain profile
"$kiln" process --outcomes "$tmp/profile.json" >"$tmp/out.json" 2>"$tmp/err"
check "plain profile accepted" "[ $? -eq 0 ] && grep -q '\"category\":\"profile_indexed\"' '$tmp/err'"
check "stored form is one JSON line" "[ \$(wc -l <'$tmp/out.json') -eq 1 ] && python3 -m json.tool '$tmp/out.json' >/dev/null"

# with the transaction merged (spec 3.8)
"$kiln" process --transaction "$tmp/tx.json" "$tmp/profile.json" >"$tmp/merged.json" 2>/dev/null
check "transaction merged: name, release, tags, device class" "python3 - '$tmp/merged.json' <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
assert p['transaction']['name'] == 'MoviesViewController', p['transaction']
assert p['release'] == 'app@1.0' and p['environment'] == 'production'
assert p['client_sdk'] == {'name': 'sentry.cocoa', 'version': '8.0.0'}
assert p['transaction_tags']['device.class'] == '3'
assert p['device']['classification'] == 'high'
m = p['transaction_metadata']
assert m['transaction.op'] == 'ui.load' and m['transaction.status'] == 'ok'
assert m['transaction.start'] == '2022-09-01T09:45:00.000000000+00:00', m
assert p['transaction']['segment_id'] == 'bd2eb23da2beb459'
frames = p['profile']['frames']
assert frames[0]['in_app'] is True and frames[1]['in_app'] is False
PY"

# an envelope, gzip'd, as the Cocoa SDK sends it
{
    printf '{"event_id":"30976f2ddbe04ac9b6bffe6e35d4710c","sent_at":"2022-09-01T09:45:01Z"}\n'
    printf '{"type":"transaction","length":%d}\n' "$(stat -c %s "$tmp/tx.json")"
    cat "$tmp/tx.json"
    printf '\n{"type":"profile"}\n'
    tr -d '\n' <"$tmp/profile.json"
    printf '\n'
} >"$tmp/env.bin"
gzip -c "$tmp/env.bin" >"$tmp/env.bin.gz"
"$kiln" process --envelope --outcomes "$tmp/env.bin.gz" >"$tmp/env.out" 2>"$tmp/env.err"
check "gzip envelope processed with its transaction" "[ $? -eq 0 ] && grep -q MoviesViewController '$tmp/env.out' && [ \$(grep -c '\"outcome\":\"accepted\"' '$tmp/env.err') -eq 3 ]"

# an envelope whose sampled profile has no transaction: missing_transaction
{
    printf '{}\n{"type":"profile"}\n'
    tr -d '\n' <"$tmp/profile.json"
} >"$tmp/notx.bin"
"$kiln" process --envelope --outcomes "$tmp/notx.bin" >/dev/null 2>"$tmp/notx.err"
check "sampled profile without transaction: missing_transaction" "[ $? -eq 1 ] && grep -q '\"reason\":\"missing_transaction\"' '$tmp/notx.err'"

# unsampled
"$kiln" process --unsampled --outcomes "$tmp/profile.json" >/dev/null 2>"$tmp/uns.err"
check "unsampled: profile_indexed filtered 'sampled', no duration" "grep -q '\"outcome\":\"filtered\",\"reason\":\"sampled\",\"category\":\"profile_indexed\"' '$tmp/uns.err' && ! grep -q duration '$tmp/uns.err'"

# speedscope
"$kiln" process --format speedscope "$tmp/profile.json" >"$tmp/ss.json"
check "speedscope view" "python3 -c \"import json,sys; d=json.load(open('$tmp/ss.json')); assert d['profiles'][0]['type']=='sampled' and d['shared']['frames']\""

# Relay's msgpack message around the same payload
python3 - "$tmp/profile.json" "$tmp/msg.bin" <<'PY'
import json, struct, sys
payload = json.dumps(json.load(open(sys.argv[1]))).encode()
def s(x):
    b = x.encode()
    return bytes([0xa0 | len(b)]) + b
m = bytes([0x86]) + s("type") + s("profile") + s("organization_id") + bytes([0xcd, 1, 44]) \
    + s("project_id") + bytes([7]) + s("received") + bytes([0xce]) + struct.pack(">I", 1700000000) \
    + s("retention_days") + bytes([30]) + s("payload") + bytes([0xc5]) + struct.pack(">H", len(payload)) + payload
open(sys.argv[2], "wb").write(m)
PY
"$kiln" process --msgpack "$tmp/msg.bin" >"$tmp/msg.out" 2>/dev/null
check "msgpack message: ids from the message" "python3 -c \"import json; p=json.load(open('$tmp/msg.out')); assert (p['organization_id'],p['project_id'],p['received'],p['retention_days'])==(300,7,1700000000,30)\""

# limits: a 200 MB document is refused from its size, in bounded memory
truncate -s 200M "$tmp/huge.json"
/usr/bin/env time -f '%M' -o "$tmp/rss" "$kiln" process "$tmp/huge.json" >/dev/null 2>"$tmp/huge.err"
rc=$?
check "200 MB file: profiling_exceed_size_limit, exit 1" "[ $rc -eq 1 ] && grep -q profiling_exceed_size_limit '$tmp/huge.err'"
if [ -z "${KL_SANITIZED:-}" ]; then
    check "200 MB file: peak RSS under 32 MB" "[ \$(tail -n1 '$tmp/rss') -lt 32768 ]"
fi
head -c 200000000 /dev/zero | /usr/bin/env time -f '%M' -o "$tmp/rss2" "$kiln" process - >/dev/null 2>"$tmp/huge2.err"
if [ -z "${KL_SANITIZED:-}" ]; then
    check "200 MB on stdin: refused past 50 MiB, RSS under 128 MB" "grep -q profiling_exceed_size_limit '$tmp/huge2.err' && [ \$(tail -n1 '$tmp/rss2') -lt 131072 ]"
else
    check "200 MB on stdin: refused past 50 MiB" "grep -q profiling_exceed_size_limit '$tmp/huge2.err'"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

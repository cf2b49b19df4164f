#!/usr/bin/env bash
# chunks.sh KILN CORPUS TESTS - GET .../profiling/chunks/: a profiler's sample-format chunks
# merged over a time range (spec §8). Two made-up python chunks 60 s apart, 5 samples each,
# one stack [leaf, main] each: the merged chunk over both has 10 samples, 4 frames, stacks
# [[0,1],[2,3]] (the second chunk's frames offset by 2), the first chunk's id as its id; a
# range covering only the first has its 5 samples; an unknown profiler is 404, a missing
# parameter 400.
set -u
kiln=$1
command -v curl >/dev/null && command -v python3 >/dev/null || { echo "1..0 # SKIP curl/python3"; exit 77; }
tmp=$(mktemp -d)
trap 'kill $srv 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok - $1"; else fail=$((fail + 1)); echo "not ok - $1"; fi; }

"$kiln" serve --data "$tmp/data" --listen 127.0.0.1:0 >"$tmp/out" 2>"$tmp/err" &
srv=$!
for _ in $(seq 100); do grep -q '^DSN:' "$tmp/out" 2>/dev/null && break; sleep 0.1; done
port=$(grep -o '127.0.0.1:[0-9]*' "$tmp/out" | head -1 | cut -d: -f2)
key=$(sed -n 's|^DSN: http://\([0-9a-f]*\)@.*|\1|p' "$tmp/out")
check "server started" "[ -n '$port' ] && [ -n '$key' ]"

python3 - "$port" "$key" <<'PY'
import json, sys, urllib.request
port, key = sys.argv[1], sys.argv[2]
pid = "4d229f1d3807421ba62a5f8bc295d836"
def chunk(cid, t0, leaf):
    return {"version": "2", "chunk_id": cid, "profiler_id": pid, "platform": "python",
            "release": "r1", "client_sdk": {"name": "sentry.python", "version": "2.0.0"},
            "profile": {"samples": [{"stack_id": 0, "thread_id": "1", "timestamp": t0 + i * 0.01}
                                    for i in range(5)],
                        "stacks": [[0, 1]],
                        "frames": [{"function": leaf, "module": "app"},
                                   {"function": "main", "module": "app"}],
                        "thread_metadata": {"1": {"name": "MainThread"}}}}
for cid, t0, leaf in [("0432a0a4c25f4697bf9f0a2fcbe6a814", 1710805700.0, "first"),
                      ("1532a0a4c25f4697bf9f0a2fcbe6a814", 1710805760.0, "second")]:
    env = "{}\n" + json.dumps({"type": "profile_chunk", "platform": "python"}) + "\n" + \
        json.dumps(chunk(cid, t0, leaf)) + "\n"
    urllib.request.urlopen(urllib.request.Request(
        "http://127.0.0.1:%s/api/1/envelope/?sentry_key=%s" % (port, key), data=env.encode()),
        timeout=10)
PY
for _ in $(seq 100); do [ "$("$kiln" profiles --data "$tmp/data" | grep -c chunk_id)" = 2 ] && break; sleep 0.1; done

base="http://127.0.0.1:$port/api/0/organizations/default/profiling/chunks/?project=1&profiler_id=4d229f1d3807421ba62a5f8bc295d836"
curl -s --max-time 10 "$base&start=2024-03-18T23:48:00Z&end=2024-03-18T23:50:00Z" >"$tmp/both.json"
check "both chunks merged: 10 samples, 4 frames, stacks offset, first chunk's id" "python3 -c \"
import json; d=json.load(open('$tmp/both.json')); c=d['chunk']; p=c['profile']
assert d['debug_chunk_ids']==['0432a0a4c25f4697bf9f0a2fcbe6a814','1532a0a4c25f4697bf9f0a2fcbe6a814']
assert len(p['samples'])==10 and len(p['frames'])==4 and p['stacks']==[[0,1],[2,3]]
assert [s['stack_id'] for s in p['samples']]==[0]*5+[1]*5
assert c['chunk_id']=='0432a0a4c25f4697bf9f0a2fcbe6a814' and p['frames'][2]['function']=='second'
\""
curl -s --max-time 10 "$base&start=2024-03-18T23:48:00Z&end=2024-03-18T23:49:00Z" >"$tmp/one.json"
check "a range over the first chunk only: its 5 samples" "python3 -c \"
import json; d=json.load(open('$tmp/one.json'))
assert d['debug_chunk_ids']==['0432a0a4c25f4697bf9f0a2fcbe6a814'] and len(d['chunk']['profile']['samples'])==5
\""
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$port/api/0/organizations/default/profiling/chunks/?project=1&profiler_id=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&start=2024-03-18T23:48:00Z&end=2024-03-18T23:50:00Z")
check "unknown profiler: 404" "[ '$code' = 404 ]"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$base")
check "missing start/end: 400" "[ '$code' = 400 ]"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/usr/bin/env python3
"""gen_envelopes.py - gzip'd Sentry envelopes for the ingest benchmark (bench/ingest.sh)

usage: gen_envelopes.py GEN_PROFILE small|medium|large COUNT OUT_PREFIX [--seed-base N]

Writes OUT_PREFIX.pack (COUNT gzip'd envelopes, concatenated) and OUT_PREFIX.idx (one line
"offset length" per envelope) for bench/ingest.lua to load at init. Each envelope is what
sentry-cocoa sends for a sampled transaction: header {event_id, sent_at}, a `transaction`
item (the event the profile belongs to: same transaction id, trace id, name, release and
time window) and a `profile` item, `gen_profile SIZE --seed (seed-base + i)`. Every seed
gives a different profile (event_id, transaction/trace ids, samples), so the COUNT
envelopes are distinct; the store refuses a repeated profile id within a project
(store.conflict), which is why bench/ingest.lua also spreads them over several projects.

Deterministic: the bytes depend only on the arguments (gzip mtime 0, level 6, as SDKs).
stdlib only.
"""
import gzip
import json
import subprocess
import sys
import os


def envelope(profile_bytes: bytes) -> bytes:
    p = json.loads(profile_bytes)
    tx = p["transaction"]
    # profile timestamp is the transaction start; relative_end_ns is its duration
    from datetime import datetime, timezone

    start = datetime.strptime(p["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc).timestamp()
    end = start + int(tx["relative_end_ns"]) / 1e9
    event = {
        "type": "transaction",
        "event_id": tx["id"],
        "transaction": tx["name"],
        "transaction_info": {"source": "component"},
        "release": p["release"],
        "environment": p["environment"],
        "platform": "cocoa",
        "sdk": {"name": "sentry.cocoa", "version": "8.36.0"},
        "start_timestamp": round(start, 6),
        "timestamp": round(end, 6),
        "contexts": {
            "trace": {"trace_id": tx["trace_id"], "span_id": tx["id"][:16],
                      "op": "ui.load", "status": "ok"},
            "device": {"model": "iPhone15,3", "arch": "arm64e", "family": "iOS"},
            "os": {"name": "iOS", "version": "17.4.1", "build": "21E237"},
        },
        "tags": [["device.class", "3"], ["os", "iOS"]],
    }
    ev = json.dumps(event, separators=(",", ":")).encode()
    prof = profile_bytes.rstrip(b"\n")
    head = json.dumps({"event_id": tx["id"], "sent_at": p["timestamp"],
                       "sdk": {"name": "sentry.cocoa", "version": "8.36.0"}},
                      separators=(",", ":")).encode()
    return b"".join([
        head, b"\n",
        b'{"type":"transaction","length":%d}\n' % len(ev), ev, b"\n",
        b'{"type":"profile","length":%d}\n' % len(prof), prof, b"\n",
    ])


def main(argv):
    args = [a for a in argv[1:]]
    seed_base = 1000
    if "--seed-base" in args:
        i = args.index("--seed-base")
        seed_base = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 4:
        sys.stderr.write(__doc__)
        return 2
    gen, size, count, prefix = args[0], args[1], int(args[2]), args[3]
    raw_total = gz_total = 0
    with open(prefix + ".pack.tmp", "wb") as pack, open(prefix + ".idx.tmp", "w") as idx:
        off = 0
        for i in range(count):
            prof = subprocess.run([gen, size, "--seed", str(seed_base + i), "-o", "-"],
                                  check=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL).stdout
            env = envelope(prof)
            gz = gzip.compress(env, compresslevel=6, mtime=0)
            pack.write(gz)
            idx.write("%d %d\n" % (off, len(gz)))
            off += len(gz)
            raw_total += len(env)
            gz_total += len(gz)
    os.replace(prefix + ".pack.tmp", prefix + ".pack")
    os.replace(prefix + ".idx.tmp", prefix + ".idx")
    sys.stderr.write("gen_envelopes: %s: %d envelopes, %.0f bytes each (%.0f gzip'd)\n"
                     % (size, count, raw_total / count, gz_total / count))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

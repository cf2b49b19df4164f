#!/usr/bin/env python3
"""sdk_envelopes.py - Sentry envelopes shaped like the ones the JavaScript SDKs send.

Used by tests/cli/serve.sh and tests/cli/crash.sh (stdlib only). As a module it gives the
builders and a small HTTP client; as a program it writes one envelope to --out and prints a
JSON line describing it (ids, expected duration), e.g.

    python3 sdk_envelopes.py node --out env.bin
    {"kind":"node","event_id":"...","profile_id":"...","duration_ms":250,"bytes":1234}

Shapes (field by field as the SDK code builds them):
  node     @sentry/node + @sentry/profiling-node: envelope header {event_id, sent_at, sdk,
           trace}; items [{"type":"transaction"}, event] and [{"type":"profile"}, profile]
           where the profile is sample format v1, platform "node", string
           elapsed_since_start_ns, thread "0" named "main", frames {function, abs_path,
           lineno, colno}, measurements, and "transaction": {name, id, trace_id,
           active_thread_id}. Items carry no "length", as serializeEnvelope writes them.
  browser  @sentry/browser's browserProfilingIntegration: the header also carries "dsn"; the
           profile is v1, platform "javascript", with "transactions": [{..., relative_start_ns,
           relative_end_ns}]. The SDK posts it as text/plain with the key in the query.
  chunk    a continuous-profiling profile_chunk (sample format v2), item header
           {"type":"profile_chunk","platform":P}, samples with "timestamp" in seconds.
  spans-v2 sentry-javascript v10+ span streaming with UI profiling: a `span` item (span v2
           container; only the segment carries sentry.profiler_id) and the profile_chunk of
           that profiler, in one envelope without an event_id. spans-v2-unprofiled: the
           same spans without a profiler id or chunk (span streaming without profiling).
  tx-profiler  a transaction-only envelope naming a profiler (contexts.profile.profiler_id,
           contexts.trace.data thread.id), as SDKs v8-v10 link transactions to chunks; its
           chunk is `chunk --profiler-id P --start S`.
  node-invalid / node-truncated / chunk-mismatch  acknowledged at ingest, rejected by the
           workers (one sample; profile JSON cut short; item header platform of another
           profile kind)
  padded-profile / padded-total / event-item / items / attachments  sized envelopes for the
           limit tests (--size bytes of one item or of the whole envelope, --count items)
Every call makes fresh random ids, so repeated posts are distinct profiles.
`sdk_envelopes.py check --ledger L --outcomes O --profiles P [--never F] [--project N]`
compares the lines printed for acknowledged posts with `kiln outcomes` / `kiln profiles`.
The duration is fixed at 250 ms (11 samples 25 ms apart; the transaction lasts 0.25 s), so
the expected profile_duration outcome is exact.
"""
import argparse
import struct
import datetime
import http.client
import json
import sys
import time
import uuid
import zlib

NODE_SDK = {"name": "sentry.javascript.node", "version": "8.55.0",
            "integrations": ["Http", "Express", "ProfilingIntegration"],
            "packages": [{"name": "npm:@sentry/node", "version": "8.55.0"}]}
BROWSER_SDK = {"name": "sentry.javascript.browser", "version": "8.55.0",
               "integrations": ["BrowserTracing", "BrowserProfiling"],
               "packages": [{"name": "npm:@sentry/browser", "version": "8.55.0"}]}
SAMPLES = 11
STEP_NS = 25_000_000
DURATION_MS = (SAMPLES - 1) * STEP_NS // 1_000_000  # 250


def new_id():
    return uuid.uuid4().hex


def dumps(obj):
    """JSON.stringify: no spaces."""
    return json.dumps(obj, separators=(",", ":"))


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def serialize(header, items):
    """sentry-javascript serializeEnvelope: header, then "\\n" + item header + "\\n" +
    payload for each item; no trailing newline. items: [(item_header, payload)] where a
    payload is a dict (JSON) or bytes (written as is)."""
    out = [dumps(header).encode()]
    for ih, payload in items:
        body = payload if isinstance(payload, (bytes, bytearray)) else dumps(payload).encode()
        out.append(b"\n" + dumps(ih).encode() + b"\n" + bytes(body))
    return b"".join(out)


def _frames_js(base_url):
    return [
        {"function": "processTicksAndRejections", "abs_path": "node:internal/process/task_queues",
         "lineno": 95, "colno": 5},
        {"function": "handleRequest", "abs_path": base_url + "/app/routes/users.js",
         "lineno": 42, "colno": 17},
        {"function": "queryUsers", "abs_path": base_url + "/app/db.js", "lineno": 7, "colno": 3},
        {"function": "JSON.parse", "abs_path": "", "lineno": 0, "colno": 0},
    ]


def _transaction_event(platform, sdk, tx_id, trace_id, profile_id, start, name, release):
    return {
        "contexts": {
            "trace": {"span_id": new_id()[:16], "trace_id": trace_id, "op": "http.server",
                      "status": "ok", "origin": "auto.http.otel.http"},
            "profile": {"profile_id": profile_id},
            "runtime": {"name": "node", "version": "v20.11.1"} if platform == "node" else
            {"name": "javascript"},
        },
        "spans": [],
        "start_timestamp": start,
        "timestamp": start + 0.25,
        "transaction": name,
        "type": "transaction",
        "transaction_info": {"source": "route"},
        "platform": platform,
        "event_id": tx_id,
        "environment": "production",
        "release": release,
        "sdk": {"name": sdk["name"], "version": sdk["version"],
                "integrations": sdk["integrations"], "packages": sdk["packages"]},
    }


def _v1_profile_body(samples, thread="0"):
    return {
        "samples": [{"stack_id": i % 3, "thread_id": thread,
                     "elapsed_since_start_ns": str(i * STEP_NS)} for i in range(samples)],
        "stacks": [[3, 2, 1, 0], [2, 1, 0], [1, 0]],
        "frames": _frames_js("/srv"),
        "thread_metadata": {thread: {"name": "main"}},
    }


def node_envelope(samples=SAMPLES, sampled=None, release="api@1.4.2", dsn=None):
    """A transaction + profile envelope as @sentry/node with @sentry/profiling-node sends
    it. samples < 2 makes an invalid profile (profiling_not_enough_samples)."""
    now = time.time()
    start = float(int(now) - 5)  # whole seconds: start + 0.25 is exact
    tx_id, trace_id, profile_id = new_id(), new_id(), new_id()
    name = "GET /users/:id"
    tx = _transaction_event("node", NODE_SDK, tx_id, trace_id, profile_id, start, name, release)
    profile = {
        "event_id": profile_id,
        "timestamp": iso(start),
        "platform": "node",
        "version": "1",
        "release": release,
        "environment": "production",
        "measurements": {
            "memory_footprint": {"unit": "byte", "values": [
                {"elapsed_since_start_ns": "0", "value": 40960000},
                {"elapsed_since_start_ns": str(STEP_NS * 4), "value": 41000000}]},
            "cpu_usage": {"unit": "percent", "values": [
                {"elapsed_since_start_ns": "0", "value": 12.5}]},
        },
        "runtime": {"name": "node", "version": "20.11.1"},
        "os": {"name": "linux", "version": "6.1.0-18-amd64",
               "build_number": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"},
        "device": {"locale": "en_US.UTF-8", "model": "x86_64", "manufacturer": "Linux",
                   "architecture": "x64", "is_emulator": False},
        "debug_meta": {"images": []},
        "profile": _v1_profile_body(samples),
        "transaction": {"name": name, "id": tx_id, "trace_id": trace_id,
                        "active_thread_id": "0"},
    }
    header = {"event_id": tx_id, "sent_at": iso(now), "sdk": {"name": NODE_SDK["name"],
                                                               "version": NODE_SDK["version"]},
              "trace": {"environment": "production", "release": release,
                        "public_key": "", "trace_id": trace_id, "sample_rate": "1",
                        "transaction": name, "sampled": "true"}}
    if dsn:
        header["dsn"] = dsn
    pih = {"type": "profile"}
    if sampled is not None:
        pih["sampled"] = sampled
    body = serialize(header, [({"type": "transaction"}, tx), (pih, profile)])
    info = {"kind": "node", "event_id": tx_id, "profile_id": profile_id,
            "duration_ms": DURATION_MS if samples >= 2 else 0, "platform": "node"}
    return body, info


def browser_envelope(dsn, samples=SAMPLES):
    """A pageload transaction + profile as @sentry/browser's profiling integration sends
    it: "dsn" in the envelope header, "transactions" (plural) in the profile."""
    now = time.time()
    start = float(int(now) - 5)
    tx_id, trace_id, profile_id = new_id(), new_id(), new_id()
    name = "/checkout"
    tx = _transaction_event("javascript", BROWSER_SDK, tx_id, trace_id, profile_id, start, name,
                            "web@2.0.0")
    tx["contexts"]["trace"]["op"] = "pageload"
    tx["request"] = {"url": "https://shop.example.com/checkout",
                     "headers": {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0"}}
    body_p = _v1_profile_body(samples)
    body_p["frames"] = [
        {"function": "render", "abs_path": "https://shop.example.com/assets/app.min.js",
         "lineno": 1, "colno": 3901},
        {"function": "Checkout", "abs_path": "https://shop.example.com/assets/app.min.js",
         "lineno": 1, "colno": 88},
        {"function": "onload", "abs_path": "https://shop.example.com/checkout", "lineno": 12,
         "colno": 5},
        {"function": "(program)"},
    ]
    profile = {
        "event_id": profile_id,
        "timestamp": iso(start),
        "platform": "javascript",
        "version": "1",
        "release": "web@2.0.0",
        "environment": "production",
        "runtime": {"name": "javascript",
                    "version": "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0"},
        "os": {"name": "Linux", "version": "", "build_number": "Chrome"},
        "device": {"locale": "en-US", "model": "", "manufacturer": "Chrome",
                   "architecture": "x86", "is_emulator": False},
        "debug_meta": {"images": []},
        "profile": body_p,
        "transactions": [{"name": name, "id": tx_id, "trace_id": trace_id,
                          "active_thread_id": "0", "relative_start_ns": "0",
                          "relative_end_ns": str(DURATION_MS * 1_000_000)}],
    }
    header = {"event_id": tx_id, "sent_at": iso(now),
              "sdk": {"name": BROWSER_SDK["name"], "version": BROWSER_SDK["version"]},
              "dsn": dsn,
              "trace": {"environment": "production", "release": "web@2.0.0",
                        "public_key": dsn.split("//", 1)[-1].split("@", 1)[0],
                        "trace_id": trace_id, "sample_rate": "1", "transaction": name,
                        "sampled": "true"}}
    body = serialize(header, [({"type": "transaction"}, tx), ({"type": "profile"}, profile)])
    info = {"kind": "browser", "event_id": tx_id, "profile_id": profile_id,
            "duration_ms": DURATION_MS, "platform": "javascript"}
    return body, info


def chunk_envelope(platform="node", header_platform=None, samples=SAMPLES, profiler_id=None,
                   start=None):
    """A profile_chunk (sample format v2) as @sentry/profiling-node's continuous profiler
    (platform "node") or the browser's UI profiler ("javascript") sends it. Samples are
    1/40 s apart from start (default: 5 s ago, on a whole second)."""
    now = time.time()
    start = float(int(now) - 5) if start is None else start
    chunk_id, profiler_id = new_id(), profiler_id or new_id()
    sdk = NODE_SDK if platform == "node" else BROWSER_SDK
    chunk = {
        "chunk_id": chunk_id,
        "client_sdk": {"name": sdk["name"], "version": sdk["version"]},
        "profiler_id": profiler_id,
        "platform": platform,
        "version": "2",
        "release": "api@1.4.2",
        "environment": "production",
        "debug_meta": {"images": []},
        "profile": {
            "samples": [{"stack_id": i % 3, "thread_id": "0", "timestamp": start + i / 40}
                        for i in range(samples)],
            "stacks": [[3, 2, 1, 0], [2, 1, 0], [1, 0]],
            "frames": _frames_js("/srv"),
            "thread_metadata": {"0": {"name": "main"}},
        },
    }
    header = {"event_id": new_id(), "sent_at": iso(now),
              "sdk": {"name": sdk["name"], "version": sdk["version"]}}
    ih = {"type": "profile_chunk", "platform": header_platform or platform}
    body = serialize(header, [(ih, chunk)])
    info = {"kind": "chunk", "event_id": header["event_id"], "chunk_id": chunk_id,
            "profiler_id": profiler_id, "duration_ms": DURATION_MS if samples >= 2 else 0,
            "platform": platform, "start": start}
    return body, (ih, chunk), info


BROWSER_V10_SDK = {"name": "sentry.javascript.browser", "version": "10.22.0"}


def _attr(v):
    """A span v2 attribute as the SDK serializes it: {type, value}."""
    if isinstance(v, bool):
        return {"type": "boolean", "value": v}
    if isinstance(v, int):
        return {"type": "integer", "value": v}
    if isinstance(v, float):
        return {"type": "double", "value": v}
    return {"type": "string", "value": v}


def spans_v2_envelope(profiled=True):
    """sentry-javascript v10+ span streaming with UI profiling: one `span` item, content type
    application/vnd.sentry.items.span.v2+json, item_count N, payload {"items": [...]}. Only
    the segment span (is_segment) carries sentry.profiler_id; children carry
    sentry.segment.id and thread.id. One child has a broken span_id (skipped by kiln). The
    envelope also holds the UI profiler's profile_chunk with the same profiler_id, whose 11
    samples run from start to start + 0.25 s. profiled=False: span streaming without
    profiling (no profiler id, no chunk)."""
    now = time.time()
    start = float(int(now) - 5)
    profiler_id, trace_id = new_id(), new_id()
    seg, c1, c2 = new_id()[:16], new_id()[:16], new_id()[:16]
    common = {"sentry.environment": "production", "sentry.release": "shop@2.0.0",
              "sentry.sdk.name": BROWSER_V10_SDK["name"],
              "sentry.sdk.version": BROWSER_V10_SDK["version"]}

    def span(span_id, parent, name, t0, t1, attrs, is_segment=False):
        a = dict(common)
        a.update(attrs)
        a.update({"sentry.segment.id": seg, "sentry.segment.name": "/checkout"})
        sp = {"trace_id": trace_id, "span_id": span_id, "name": name, "status": "ok",
              "is_segment": is_segment, "start_timestamp": t0, "end_timestamp": t1,
              "attributes": {k: _attr(v) for k, v in a.items()}}
        if parent:
            sp["parent_span_id"] = parent
        return sp

    items = [
        span(seg, None, "/checkout", start + 0.02, start + 0.23,
             {"sentry.profiler_id": profiler_id, "sentry.op": "pageload", "thread.id": "0",
              "thread.name": "main", "sentry.sample_rate": 1.0, "performance.timeOrigin":
              start}, is_segment=True),
        span(c1, seg, "GET /api/cart", start + 0.04, start + 0.11,
             {"sentry.op": "http.client", "thread.id": "0", "http.response.status_code": 200}),
        span(c2, seg, "render cart", start + 0.12, start + 0.2,
             {"sentry.op": "ui.render", "thread.id": "0"}),
        span("not-a-span-id", seg, "broken", start + 0.1, start + 0.2, {"thread.id": "0"}),
    ]
    header = {"sent_at": iso(now), "sdk": BROWSER_V10_SDK,
              "trace": {"trace_id": trace_id, "environment": "production",
                        "release": "shop@2.0.0", "public_key": "x", "sampled": "true"}}
    ih = {"type": "span", "item_count": len(items),
          "content_type": "application/vnd.sentry.items.span.v2+json"}
    _, chunk_item, cinfo = chunk_envelope("javascript", profiler_id=profiler_id, start=start)
    if not profiled:
        del items[0]["attributes"]["sentry.profiler_id"]
        body = serialize(header, [(ih, {"items": items})])
    else:
        body = serialize(header, [(ih, {"items": items}), chunk_item])
    info = {"kind": "spans-v2", "profiler_id": profiler_id, "trace_id": trace_id,
            "segment_id": seg, "span_ids": [seg, c1, c2], "chunk_id": cinfo["chunk_id"],
            "start": start}
    return body, info


def tx_profiler_envelope(profiler_id, start):
    """A transaction as @sentry/node v8-v10 with continuous profiling sends it: no profile
    item; contexts.profile.profiler_id and contexts.trace.data["thread.id"] name the chunks
    (sent in envelopes of their own) that hold its samples. Lasts start - 0.01 to +0.3 s."""
    tx_id, trace_id = new_id(), new_id()
    ev = _transaction_event("node", NODE_SDK, tx_id, trace_id, None, start - 0.01,
                            "GET /api/orders", "api@1.4.2")
    ev["timestamp"] = start + 0.3
    ev["contexts"]["profile"] = {"profiler_id": profiler_id}
    ev["contexts"]["trace"]["data"] = {"thread.id": "0", "thread.name": "main",
                                       "sentry.origin": "auto.http.otel.http"}
    header = {"event_id": tx_id, "sent_at": iso(time.time()),
              "sdk": {"name": NODE_SDK["name"], "version": NODE_SDK["version"]},
              "trace": {"trace_id": trace_id, "environment": "production"}}
    body = serialize(header, [({"type": "transaction"}, ev)])
    info = {"kind": "tx-profiler", "event_id": tx_id, "profiler_id": profiler_id,
            "trace_id": trace_id, "span_id": ev["contexts"]["trace"]["span_id"]}
    return body, info


def padded_profile_envelope(item_len):
    """A node envelope whose profile item payload is exactly item_len bytes (the profile
    JSON followed by spaces), with an explicit "length"; still a valid profile."""
    body, info = node_envelope()
    header, tx_h, tx, _p_h, profile = body.split(b"\n")
    if len(profile) > item_len:
        raise ValueError("item_len too small")
    profile = profile + b" " * (item_len - len(profile))
    out = b"\n".join([header, tx_h, tx, dumps({"type": "profile", "length": item_len}).encode(),
                      profile])
    info["item_bytes"] = item_len
    return out, info


def padded_total_envelope(total):
    """Like padded_profile_envelope, sized so the whole envelope is exactly total bytes."""
    body, info = node_envelope()
    header, tx_h, tx, _p_h, profile = body.split(b"\n")
    fixed = len(header) + len(tx_h) + len(tx) + 4
    for digits in range(1, 12):
        item_len = total - fixed - len(dumps({"type": "profile", "length": 10 ** (digits - 1)}))
        if len(str(item_len)) == digits and item_len >= len(profile):
            break
    else:
        raise ValueError("cannot size an envelope of %d bytes" % total)
    profile = profile + b" " * (item_len - len(profile))
    out = b"\n".join([header, tx_h, tx, dumps({"type": "profile", "length": item_len}).encode(),
                      profile])
    assert len(out) == total, (len(out), total)
    info["item_bytes"] = item_len
    return out, info


def event_item_envelope(item_len):
    """A transaction item of exactly item_len bytes (JSON padded with spaces), nothing else."""
    tx = dumps({"type": "transaction", "event_id": new_id(), "transaction": "pad",
                "start_timestamp": time.time() - 1, "timestamp": time.time()}).encode()
    tx = tx + b" " * (item_len - len(tx))
    return serialize({"event_id": new_id(), "sent_at": iso(time.time())},
                     [({"type": "transaction", "length": item_len}, tx)]), {"kind": "event"}


def items_envelope(n):
    """n tiny client_report-like items (no profiles: acknowledged and not queued)."""
    items = [({"type": "client_report"}, {"timestamp": time.time(), "discarded_events": []})
             for _ in range(n)]
    return serialize({"sent_at": iso(time.time())}, items), {"kind": "items", "items": n}


def attachments_layout(total):
    """Header and item headers of an envelope of exactly total bytes made of attachment
    items of at most 100 MiB each. Returns (header_bytes, [(item_header_bytes, size)])."""
    header = dumps({"event_id": new_id(), "sent_at": iso(time.time())}).encode()
    limit = 100 * 1024 * 1024
    parts = []
    remaining = total - len(header)
    while True:
        # "\n" + ih + "\n" + payload
        probe = dumps({"type": "attachment", "length": 10 ** 9, "filename": "a.bin"}).encode()
        overhead = 2 + len(probe)
        size = min(limit, remaining - overhead)
        if size <= 0:
            raise ValueError("total too small")
        last = remaining - overhead - size <= 0
        if last:
            size = remaining - overhead
        ih = dumps({"type": "attachment", "length": size, "filename": "a.bin"}).encode()
        # the length's digits may be shorter than the probe's: pad the filename
        pad = len(probe) - len(ih)
        ih = dumps({"type": "attachment", "length": size,
                    "filename": "a" * (1 + pad) + ".bin"}).encode()
        assert len(ih) == len(probe)
        parts.append((ih, size))
        remaining -= overhead + size
        if remaining == 0:
            break
    return header, parts


def attachments_chunks(total, piece=4 << 20):
    """Yield the bytes of an exactly-total-byte attachments envelope, in pieces."""
    header, parts = attachments_layout(total)
    yield header
    fill = b"a" * piece
    for ih, size in parts:
        yield b"\n" + ih + b"\n"
        while size > 0:
            n = min(size, piece)
            yield fill[:n]
            size -= n


# ---- what the server should record for each acknowledged envelope ------------------------

def expected_outcomes(info):
    """(outcome, reason, category, quantity) rows kiln's rules (pipeline/outcome.h) give the
    envelope described by info (a line this program printed)."""
    kind, ms = info["kind"], info.get("duration_ms", 0)
    ui = info.get("platform") == "javascript"
    dur = "profile_duration_ui" if ui else "profile_duration"
    if kind in ("node", "browser"):
        return [("accepted", None, "profile", 1), ("accepted", None, "profile_indexed", 1),
                ("accepted", None, dur, ms)]
    if kind == "chunk":
        return [("accepted", None, "profile_chunk_ui" if ui else "profile_chunk", 1),
                ("accepted", None, dur, ms)]
    if kind == "chunk-mismatch":
        return [("invalid", "profiling_invalid_profile_type", "profile_chunk", 1)]
    if kind == "node-truncated":
        return [("invalid", "profiling_invalid_json", "profile", 1),
                ("invalid", "profiling_invalid_json", "profile_indexed", 1)]
    if kind == "node-invalid":
        return [("invalid", "profiling_not_enough_samples", "profile", 1),
                ("invalid", "profiling_not_enough_samples", "profile_indexed", 1)]
    raise ValueError("no expectation for kind " + kind)


def stored_id(info):
    """The id `kiln profiles` shows for this envelope's profile, or None (rejected)."""
    if info["kind"] in ("node", "browser"):
        return info["profile_id"]
    if info["kind"] == "chunk":
        return info["chunk_id"]
    return None


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def check_ledger(ledger, outcomes, profiles, project=1, never=None):
    """Compare what was acknowledged (ledger lines) with `kiln outcomes` and `kiln profiles`
    output for one project. Returns a list of problems (empty: all good)."""
    problems = []
    want = {}
    ids = []
    for info in ledger:
        for o, r, c, q in expected_outcomes(info):
            if q:
                want[(o, r, c)] = want.get((o, r, c), 0) + q
        sid = stored_id(info)
        if sid:
            ids.append(sid)
    got = {}
    for row in outcomes:
        if row["project_id"] != project:
            continue
        k = (row["outcome"], row["reason"], row["category"])
        got[k] = got.get(k, 0) + row["quantity"]
    for k in sorted(set(want) | set(got), key=str):
        if want.get(k, 0) != got.get(k, 0):
            problems.append("outcome %s: expected %d, recorded %d" % (
                "/".join(str(x) for x in k), want.get(k, 0), got.get(k, 0)))
    stored = [p.get("profile_id") or p.get("chunk_id") for p in profiles
              if p["project_id"] == project]
    seen = {}
    for s in stored:
        seen[s] = seen.get(s, 0) + 1
    for s, n in seen.items():
        if n > 1:
            problems.append("profile %s stored %d times" % (s, n))
    for s in ids:
        if s not in seen:
            problems.append("acknowledged profile %s not stored" % s)
    extra = set(seen) - set(ids)
    if extra:
        problems.append("stored but not acknowledged: %s" % ", ".join(sorted(extra)[:5]))
    for s in never or ():
        if s in seen:
            problems.append("rejected profile %s was stored" % s)
    return problems


# ---- a small HTTP client (keep-alive off, bounded) ----------------------------------------

def post(host, port, path, body, headers=None, timeout=30):
    """POST body (bytes or an iterable of bytes with a Content-Length header given, or
    chunked when headers has Transfer-Encoding) and return (status, headers dict, body)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        chunked = hdrs.get("Transfer-Encoding", "").lower() == "chunked"
        if chunked:
            hdrs.pop("Transfer-Encoding")
            conn.request("POST", path, body=body, headers=hdrs, encode_chunked=True)
        else:
            conn.request("POST", path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def gzip_stream(chunks, level=1):
    co = zlib.compressobj(level, zlib.DEFLATED, 31)
    for c in chunks:
        out = co.compress(c)
        if out:
            yield out
    yield co.flush()


def cmd_check(argv):
    ap = argparse.ArgumentParser(prog="sdk_envelopes.py check")
    ap.add_argument("--ledger", required=True, help="JSON lines printed for acknowledged posts")
    ap.add_argument("--outcomes", required=True, help="`kiln outcomes` output")
    ap.add_argument("--profiles", required=True, help="`kiln profiles` output")
    ap.add_argument("--never", help="file of ids (one a line) that must not be stored")
    ap.add_argument("--project", type=int, default=1)
    a = ap.parse_args(argv)
    never = []
    if a.never:
        with open(a.never) as f:
            never = [x.strip() for x in f if x.strip()]
    problems = check_ledger(read_jsonl(a.ledger), read_jsonl(a.outcomes),
                            read_jsonl(a.profiles), a.project, never)
    for p in problems:
        print(p)
    return 1 if problems else 0


def _mp_str(x):
    b = x.encode()
    assert len(b) < 32
    return bytes([0xa0 | len(b)]) + b


def _mp_uint(n):
    return bytes([0xcf]) + struct.pack(">Q", n)


def relay_message(org_id, project_id):
    """Relay's message to Sentry on ingest-profiles (spec §4, msgpack map): the node SDK's
    profile after Relay merged its transaction, with the organization, project, received
    time and retention Relay adds."""
    body, info = node_envelope()
    payload = body.rsplit(b"\n", 1)[1]  # the profile item is the envelope's last line
    m = (bytes([0x87]) + _mp_str("type") + _mp_str("profile") + _mp_str("organization_id") +
         _mp_uint(org_id) + _mp_str("project_id") + _mp_uint(project_id) + _mp_str("key_id") +
         bytes([0xc0]) + _mp_str("received") + _mp_uint(int(time.time())) +
         _mp_str("retention_days") + bytes([90]) + _mp_str("payload") + bytes([0xc6]) +
         struct.pack(">I", len(payload)) + payload)
    return m, info


BUILDERS = {"node", "node-invalid", "node-truncated", "browser", "chunk", "chunk-ui", "chunk-mismatch",
            "spans-v2", "spans-v2-unprofiled", "tx-profiler", "padded-profile", "padded-total",
            "event-item", "items", "attachments", "relay-message"}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        return cmd_check(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=sorted(BUILDERS))
    ap.add_argument("--out", required=True, help="file to write the envelope to")
    ap.add_argument("--dsn", help="dsn for the envelope header (browser: required)")
    ap.add_argument("--size", type=int, help="bytes: item size or total envelope size")
    ap.add_argument("--count", type=int, help="items")
    ap.add_argument("--gzip", action="store_true", help="write gzip'd (streamed)")
    ap.add_argument("--org", type=int, default=1, help="relay-message: organization id")
    ap.add_argument("--project", type=int, default=1, help="relay-message: project id")
    ap.add_argument("--profiler-id", help="chunk, tx-profiler: the profiler id (32 hex)")
    ap.add_argument("--start", type=float, help="chunk, tx-profiler: first sample (unix s)")
    a = ap.parse_args()
    if a.kind == "node":
        body, info = node_envelope(dsn=a.dsn)
    elif a.kind == "node-invalid":
        body, info = node_envelope(samples=1, dsn=a.dsn)
        info["kind"] = "node-invalid"
    elif a.kind == "node-truncated":
        body, info = node_envelope(dsn=a.dsn)
        body = body[:len(body) - len(body) // 4]  # the profile JSON loses its end
        info["kind"] = "node-truncated"
    elif a.kind == "browser":
        body, info = browser_envelope(a.dsn)
    elif a.kind == "chunk":
        body, _, info = chunk_envelope("node", profiler_id=a.profiler_id, start=a.start)
    elif a.kind == "chunk-ui":
        body, _, info = chunk_envelope("javascript")
    elif a.kind == "chunk-mismatch":
        body, _, info = chunk_envelope("node", header_platform="javascript")
        info["kind"] = "chunk-mismatch"
    elif a.kind == "spans-v2":
        body, info = spans_v2_envelope()
    elif a.kind == "spans-v2-unprofiled":
        body, info = spans_v2_envelope(profiled=False)
    elif a.kind == "tx-profiler":
        body, info = tx_profiler_envelope(a.profiler_id, a.start)
    elif a.kind == "padded-profile":
        body, info = padded_profile_envelope(a.size)
    elif a.kind == "padded-total":
        body, info = padded_total_envelope(a.size)
    elif a.kind == "event-item":
        body, info = event_item_envelope(a.size)
    elif a.kind == "items":
        body, info = items_envelope(a.count)
    elif a.kind == "relay-message":
        body, info = relay_message(a.org, a.project)
    else:  # attachments: streamed, may be 200 MiB
        n = 0
        with open(a.out, "wb") as f:
            src = attachments_chunks(a.size)
            for c in (gzip_stream(src) if a.gzip else src):
                f.write(c)
                n += len(c)
        print(dumps({"kind": "attachments", "decoded_bytes": a.size, "bytes": n}))
        return 0
    if a.gzip:
        body = gzip_stream([body])
        body = b"".join(body)
    with open(a.out, "wb") as f:
        f.write(body)
    info["bytes"] = len(body)
    print(dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())

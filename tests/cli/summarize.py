#!/usr/bin/env python3
"""summarize.py - a hand-checkable summary of `kiln process` output for golden tests.

Reads the stored-form JSON lines of one `kiln process` run on stdin and prints the facts a
reviewer checks against the spec (counts, in-app decisions, trims, metadata pruning), one
per line, so a golden .out file stays small enough to verify by hand.
"""
import json
import sys


def frame_line(f):
    keys = ("function", "module", "package", "in_app", "platform", "status", "instruction_addr")
    return " ".join("%s=%s" % (k, json.dumps(f[k])) for k in keys if k in f)


def summarize(p):
    out = []
    kind = ("chunk" if "chunk_id" in p else "profile")
    out.append("kind=%s platform=%s version=%s" % (kind, p.get("platform"), p.get("version")))
    for k in ("event_id", "profile_id", "chunk_id", "profiler_id", "release", "environment",
              "timestamp", "duration_ns", "organization_id", "project_id", "received",
              "retention_days", "sampled"):
        if k in p:
            out.append("%s=%s" % (k, json.dumps(p[k])))
    if "device" in p:
        out.append("device=%s" % json.dumps(p["device"], sort_keys=True))
    if "client_sdk" in p:
        out.append("client_sdk=%s" % json.dumps(p["client_sdk"], sort_keys=True))
    if "transaction" in p:
        out.append("transaction=%s" % json.dumps(p["transaction"], sort_keys=True))
    if "transaction_name" in p:
        out.append("transaction_name=%s" % json.dumps(p["transaction_name"]))
    for k in ("transaction_metadata", "transaction_tags"):
        if k in p:
            out.append("%s=%s" % (k, json.dumps(p[k], sort_keys=True)))
    imgs = p.get("debug_meta", {}).get("images", [])
    out.append("images=%d" % len(imgs))
    for im in imgs[:2]:
        out.append("  image %s" % json.dumps(im, sort_keys=True))
    ms = p.get("measurements") or {}
    out.append("measurements=%s" % ",".join("%s:%d" % (k, len(v["values"]))
                                            for k, v in sorted(ms.items())))
    prof = p.get("profile")
    if isinstance(prof, dict) and "samples" in prof:
        samples, stacks, frames = prof["samples"], prof["stacks"], prof["frames"]
        idle = sum(1 for s in samples if s.get("state") == "idle")
        out.append("samples=%d idle=%d stacks=%d frames=%d" %
                   (len(samples), idle, len(stacks), len(frames)))
        out.append("threads=%s" % ",".join(sorted({str(s["thread_id"]) for s in samples})))
        out.append("thread_metadata=%s" % json.dumps(prof.get("thread_metadata"), sort_keys=True))
        if "queue_metadata" in prof:
            out.append("queue_metadata=%s" % json.dumps(prof["queue_metadata"], sort_keys=True))
        in_app = sum(1 for f in frames if f.get("in_app") is True)
        out.append("frames_in_app=%d/%d" % (in_app, len(frames)))
        for f in frames[:4]:
            out.append("  frame %s" % frame_line(f))
        for s in samples[:3]:
            out.append("  sample %s stack=%s" % (json.dumps(s, sort_keys=True),
                                                stacks[s["stack_id"]][:6]))
    elif isinstance(prof, dict):
        out.append("android clock=%s methods=%d events=%d threads=%d start_time=%s" %
                   (prof.get("clock"), len(prof.get("methods", [])), len(prof.get("events", [])),
                    len(prof.get("threads", [])), prof.get("start_time")))
        for m in prof.get("methods", [])[:3]:
            out.append("  method %s" % json.dumps(m, sort_keys=True))
    return out


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        for l in summarize(json.loads(line)):
            print(l)


if __name__ == "__main__":
    main()

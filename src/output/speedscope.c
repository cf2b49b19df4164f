/* speedscope.c - speedscope JSON for one profile (spec §8.1)
 *
 * Two producers share one document frame: sampled profiles for the sample formats (v1, v2)
 * and evented profiles for decoded Android method traces. Each first works out everything
 * that decides the head of the document (which profile is active, durations) in a scratch
 * arena, then streams the document in one go. See speedscope.h for the output shape.
 */
#include "output/speedscope.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/hash.h"
#include "base/time.h"
#include "json/json.h"
#include "normalize/normalize.h"

#define SCHEMA_URL "https://www.speedscope.app/file-format-schema.json"
#define EXPORTER "kiln"
#define MAIN_QUEUE_LABEL "com.apple.main-thread"
#define NS_PER_S 1000000000ULL

struct ctx {
    const struct kl_profile *p;
    struct kl_arena *a; /* scratch, released by the caller of the producers */
    struct kl_buf *out;
    struct kl_jw w;
    struct kl_err *err;
    struct kl_str version; /* top-level "version" and metadata.version */
};

/* ---------------------------------------------------------------------------------- */
/* Small helpers                                                                       */

/* Absent slices (ptr NULL) are written as "" so the writer never sees a NULL pointer. */
static struct kl_str nz(struct kl_str s)
{
    return s.ptr ? s : KL_STR("");
}

static void put_str(struct ctx *c, const char *key, struct kl_str s)
{
    kl_jw_key(&c->w, key);
    kl_jw_str(&c->w, nz(s));
}

static void put_str_opt(struct ctx *c, const char *key, struct kl_str s)
{
    if (s.len)
        put_str(c, key, s);
}

static void put_u64(struct ctx *c, const char *key, uint64_t v)
{
    kl_jw_key(&c->w, key);
    kl_jw_u64(&c->w, v);
}

static void put_bool(struct ctx *c, const char *key, bool v)
{
    kl_jw_key(&c->w, key);
    kl_jw_bool(&c->w, v);
}

static void put_time(struct ctx *c, const char *key, int64_t ns)
{
    char tmp[48];
    size_t n = kl_rfc3339_format(ns, tmp);
    kl_jw_key(&c->w, key);
    kl_jw_str(&c->w, kl_str_make(tmp, n));
}

static void put_hex(struct ctx *c, const char *key, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "0x%" PRIx64, v);
    kl_jw_key(&c->w, key);
    kl_jw_str(&c->w, kl_str_make(tmp, (size_t)n));
}

static bool out_failed(const struct ctx *c)
{
    return kl_err_is_set(&c->out->err);
}

/* A copy of a formatted string in the scratch arena (names are short: cut at 63 bytes). */
static struct kl_str scratch_fmt(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static struct kl_str scratch_fmt(struct ctx *c, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof tmp)
        n = (int)sizeof tmp - 1;
    return kl_str_make(kl_arena_strndup(c->a, tmp, (size_t)n), (size_t)n);
}

/* A u64 -> u32 open-addressing map in the scratch arena (thread ids, method ids). */
struct u64map {
    uint64_t *keys;
    uint32_t *vals; /* UINT32_MAX marks an empty slot */
    size_t cap, len;
};

static void u64map_init(struct kl_arena *a, struct u64map *m, size_t hint)
{
    size_t cap = 16;
    while (cap < hint * 2)
        cap <<= 1;
    m->keys = kl_arena_alloc(a, cap * sizeof *m->keys);
    m->vals = kl_arena_alloc(a, cap * sizeof *m->vals);
    memset(m->vals, 0xff, cap * sizeof *m->vals);
    m->cap = cap;
    m->len = 0;
}

static size_t u64map_pos(const struct u64map *m, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ULL;
    size_t mask = m->cap - 1, i = (size_t)(h ^ (h >> 29)) & mask;
    while (m->vals[i] != UINT32_MAX && m->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

static uint32_t u64map_find(const struct u64map *m, uint64_t key)
{
    return m->vals[u64map_pos(m, key)];
}

static void u64map_put(struct kl_arena *a, struct u64map *m, uint64_t key, uint32_t val)
{
    if ((m->len + 1) * 2 > m->cap) {
        struct u64map g;
        u64map_init(a, &g, m->cap);
        for (size_t i = 0; i < m->cap; i++)
            if (m->vals[i] != UINT32_MAX)
                u64map_put(a, &g, m->keys[i], m->vals[i]);
        *m = g;
    }
    size_t i = u64map_pos(m, key);
    if (m->vals[i] == UINT32_MAX)
        m->len++;
    m->keys[i] = key;
    m->vals[i] = val;
}

/* ---------------------------------------------------------------------------------- */
/* Frame naming: module_or_package and the fingerprint (spec §6.1)                     */

static struct kl_str module_or_package(const struct kl_frame *f)
{
    struct kl_str s = kl_frame_module_or_package(f);
    return s.ptr ? s : KL_STR("");
}

/* vroom's frame fingerprint: FNV-1 64 of "<module_or_package>:<function>", cut to 32 bits
 * (Snuba stores it as UInt32). */
static uint32_t fingerprint(struct kl_str image, struct kl_str function)
{
    uint64_t h = KL_FNV64_OFFSET;
    h = kl_fnv1_64_update(h, image.ptr, image.len);
    h = kl_fnv1_64_update(h, ":", 1);
    h = kl_fnv1_64_update(h, function.ptr, function.len);
    return (uint32_t)h;
}

struct out_frame {
    struct kl_str name, image, path, file;
    uint32_t line, col;
    bool is_inline, is_app;
    uint32_t fingerprint;
};

static void write_frame(struct ctx *c, const struct out_frame *f)
{
    kl_jw_obj_begin(&c->w);
    put_str(c, "name", f->name);
    put_str_opt(c, "image", f->image);
    put_str_opt(c, "path", f->path);
    put_str_opt(c, "file", f->file);
    if (f->line)
        put_u64(c, "line", f->line);
    if (f->col)
        put_u64(c, "col", f->col);
    if (f->is_inline)
        put_bool(c, "inline", true);
    put_bool(c, "is_application", f->is_app);
    put_u64(c, "fingerprint", f->fingerprint);
    kl_jw_obj_end(&c->w);
}

/* ---------------------------------------------------------------------------------- */
/* Document frame shared by both producers                                             */

static void write_images(struct ctx *c)
{
    const struct kl_profile *p = c->p;
    kl_jw_key(&c->w, "images");
    kl_jw_arr_begin(&c->w);
    for (size_t i = 0; i < p->images.len; i++) {
        const struct kl_image *im = &p->images.items[i];
        kl_jw_obj_begin(&c->w);
        put_str_opt(c, "arch", im->arch);
        put_str_opt(c, "code_file", im->code_file);
        put_str_opt(c, "debug_file", im->debug_file);
        put_str_opt(c, "debug_id", im->debug_id);
        put_str_opt(c, "debug_status", im->debug_status);
        if (im->has_features) {
            kl_jw_key(&c->w, "features");
            kl_jw_obj_begin(&c->w);
            put_bool(c, "has_debug_info", im->has_debug_info);
            put_bool(c, "has_sources", im->has_sources);
            put_bool(c, "has_symbols", im->has_symbols);
            put_bool(c, "has_unwind_info", im->has_unwind_info);
            kl_jw_obj_end(&c->w);
        }
        if (im->has_image_addr)
            put_hex(c, "image_addr", im->image_addr);
        if (im->image_size)
            put_u64(c, "image_size", im->image_size);
        if (im->has_image_vmaddr)
            put_hex(c, "image_vmaddr", im->image_vmaddr);
        put_str_opt(c, "type", im->type);
        put_str_opt(c, "uuid", im->uuid);
        kl_jw_obj_end(&c->w);
    }
    kl_jw_arr_end(&c->w);
}

/* As stored: v1 and legacy Android values carry elapsed_since_start_ns, chunks carry unix
 * seconds. */
static void write_measurements(struct ctx *c)
{
    const struct kl_profile *p = c->p;
    bool chunk = kl_profile_is_chunk(p);
    kl_jw_key(&c->w, "measurements");
    kl_jw_obj_begin(&c->w);
    for (size_t i = 0; i < p->measurements.len; i++) {
        const struct kl_measurement *m = &p->measurements.items[i];
        kl_jw_key_str(&c->w, nz(m->name));
        kl_jw_obj_begin(&c->w);
        put_str(c, "unit", m->unit);
        kl_jw_key(&c->w, "values");
        kl_jw_arr_begin(&c->w);
        for (size_t k = 0; k < m->n; k++) {
            kl_jw_obj_begin(&c->w);
            if (chunk) {
                kl_jw_key(&c->w, "timestamp");
                kl_jw_f64(&c->w, m->values[k].t_s);
            } else {
                put_u64(c, "elapsed_since_start_ns", m->values[k].t_ns);
            }
            kl_jw_key(&c->w, "value");
            kl_jw_f64(&c->w, m->values[k].value);
            kl_jw_obj_end(&c->w);
        }
        kl_jw_arr_end(&c->w);
        kl_jw_obj_end(&c->w);
    }
    kl_jw_obj_end(&c->w);
}

/* vroom's ProfileView (+ version), with the fields this profile has. */
static void write_metadata(struct ctx *c, uint64_t duration_ns)
{
    const struct kl_profile *p = c->p;
    kl_jw_key(&c->w, "metadata");
    kl_jw_obj_begin(&c->w);
    if (p->has_android_api_level && p->android_api_level)
        put_u64(c, "androidAPILevel", p->android_api_level);
    put_str_opt(c, "architecture", p->device_architecture);
    put_str(c, "deviceClassification", p->device_classification);
    put_str(c, "deviceLocale", p->device_locale);
    put_str(c, "deviceManufacturer", p->device_manufacturer);
    put_str(c, "deviceModel", p->device_model);
    put_str_opt(c, "deviceOSBuildNumber", p->os_build_number);
    put_str(c, "deviceOSName", p->os_name);
    put_str(c, "deviceOSVersion", p->os_version);
    put_u64(c, "durationNS", duration_ns);
    put_str_opt(c, "environment", p->environment);
    put_u64(c, "organizationID", p->organization_id);
    put_str(c, "platform", p->platform);
    put_str(c, "profileID", p->event_id);
    put_u64(c, "projectID", p->project_id);
    put_time(c, "received", p->received * (int64_t)NS_PER_S);
    put_bool(c, "sampled", p->sampled);
    if (p->has_timestamp)
        put_time(c, "timestamp", p->timestamp_ns);
    put_str(c, "traceID", p->transaction.trace_id);
    put_str(c, "transactionID", p->transaction.id);
    put_str(c, "transactionName", p->transaction.name);
    put_str(c, "version", c->version);
    kl_jw_obj_end(&c->w);
}

/* Everything before the profiles array; leaves the writer right after the "profiles" key. */
static void write_head(struct ctx *c, size_t active, struct kl_str clock, uint64_t duration_ns)
{
    const struct kl_profile *p = c->p;
    kl_jw_obj_begin(&c->w);
    put_str(c, "$schema", KL_STR(SCHEMA_URL));
    put_u64(c, "activeProfileIndex", active);
    put_str_opt(c, "androidClock", clock);
    if (duration_ns)
        put_u64(c, "durationNS", duration_ns);
    if (p->images.len)
        write_images(c);
    if (p->measurements.len)
        write_measurements(c);
    write_metadata(c, duration_ns);
    put_str(c, "platform", p->platform);
    put_str_opt(c, "profileID", p->event_id);
    put_str_opt(c, "chunkID", p->chunk_id);
    kl_jw_key(&c->w, "profiles");
}

/* Between the profiles array and the frames array. */
static void write_mid(struct ctx *c)
{
    put_u64(c, "projectID", c->p->project_id);
    kl_jw_key(&c->w, "shared");
    kl_jw_obj_begin(&c->w);
    kl_jw_key(&c->w, "frames");
}

static void write_tail(struct ctx *c)
{
    const struct kl_profile *p = c->p;
    kl_jw_obj_end(&c->w); /* shared */
    put_str(c, "transactionName", p->transaction.name);
    put_str_opt(c, "version", c->version);
    put_str(c, "exporter", KL_STR(EXPORTER));
    struct kl_str name = p->transaction.name;
    if (!name.len)
        name = p->event_id;
    if (!name.len)
        name = p->chunk_id;
    if (!name.len)
        name = KL_STR(EXPORTER);
    put_str(c, "name", name);
    kl_jw_obj_end(&c->w);
}

/* ---------------------------------------------------------------------------------- */
/* Sample formats: one sampled profile per thread                                      */

struct ts_idx {
    uint64_t ts;
    uint32_t i;
};

static int cmp_ts_idx(const void *a, const void *b)
{
    const struct ts_idx *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

struct sprof {
    uint32_t thread; /* index into data.threads */
    uint32_t off, n; /* its samples: byprof[off .. off + n), in time order */
    bool is_main;
    struct kl_str name;
};

/* Frames are the same for speedscope when file, function, line and address agree (vroom's
 * md5 of "file:function:line:instruction_addr"). */
static uint64_t frame_key_hash(const struct kl_frame *f)
{
    uint64_t h = kl_fnv1a64(f->filename.ptr, f->filename.len);
    h = kl_fnv1a64_update(h, "\xff", 1);
    h = kl_fnv1a64_update(h, f->function.ptr, f->function.len);
    uint64_t addr = (f->flags & KL_FRAME_HAS_ADDR) ? f->instruction_addr : UINT64_MAX;
    h = kl_fnv1a64_update(h, &f->lineno, sizeof f->lineno);
    return kl_fnv1a64_update(h, &addr, sizeof addr);
}

static bool frame_key_eq(const struct kl_frame *a, const struct kl_frame *b)
{
    bool ha = a->flags & KL_FRAME_HAS_ADDR, hb = b->flags & KL_FRAME_HAS_ADDR;
    return kl_str_eq(a->filename, b->filename) && kl_str_eq(a->function, b->function) &&
           a->lineno == b->lineno && ha == hb &&
           (!ha || a->instruction_addr == b->instruction_addr);
}

/* The status normalization settles on: data.symbolicator_status wins when present. */
static struct kl_str frame_status(const struct kl_frame *f)
{
    return f->data_symbolicator_status.len ? f->data_symbolicator_status : f->status;
}

static void write_sample_frame(struct ctx *c, const struct kl_frame *f, uint32_t out_idx)
{
    struct out_frame o = {0};
    o.image = module_or_package(f);
    o.fingerprint = fingerprint(o.image, f->function);
    if (f->function.len)
        o.name = f->function;
    else if (f->flags & KL_FRAME_HAS_ADDR)
        o.name = scratch_fmt(c, "unknown (0x%" PRIx64 ")", f->instruction_addr);
    else
        o.name = scratch_fmt(c, "unknown (%" PRIu32 ")", out_idx);
    o.path = f->abs_path;
    o.file = f->filename;
    o.line = f->lineno;
    o.col = f->colno;
    o.is_inline = kl_str_eq_c(frame_status(f), "symbolicated") && f->sym_addr.len == 0;
    o.is_app = f->in_app == KL_TRUE;
    write_frame(c, &o);
}

/* Thread name: metadata name, else the label of the queue the thread's first sample ran on;
 * the main-thread queue label names only the active thread (other threads that ran work on
 * the main queue are left unnamed, as in vroom). */
static struct kl_str sample_thread_name(const struct kl_sample_data *d, const struct kl_thread *th,
                                        const struct kl_sample *first, bool is_main)
{
    if (th->name.len)
        return th->name;
    if (first->queue >= 0 && (size_t)first->queue < d->queues.len) {
        struct kl_str label = d->queues.items[first->queue].label;
        if (!kl_str_eq_c(label, MAIN_QUEUE_LABEL) || is_main)
            return nz(label);
    }
    return KL_STR("");
}

static void write_thread_id(struct ctx *c, const struct kl_thread *th)
{
    uint64_t id;
    kl_jw_key(&c->w, "threadID");
    if (th->id.len && kl_parse_u64(th->id, &id))
        kl_jw_u64(&c->w, id);
    else if (th->id.len)
        kl_jw_str(&c->w, th->id); /* a non-numeric v2 thread id, kept as sent */
    else
        kl_jw_u64(&c->w, th->id_num);
}

static void write_sampled_profile(struct ctx *c, const struct sprof *sp, const uint32_t *byprof,
                                  const uint32_t *fmap, uint64_t base)
{
    const struct kl_sample_data *d = &c->p->data;
    const struct kl_thread *th = &d->threads.items[sp->thread];
    const struct kl_sample *s = d->samples.items;
    const uint32_t *idx = byprof + sp->off;

    kl_jw_obj_begin(&c->w);
    put_u64(c, "endValue", s[idx[sp->n - 1]].ts_ns - base);
    put_bool(c, "isMainThread", sp->is_main);
    put_str(c, "name", sp->name);
    if (th->has_priority && th->priority != 0) {
        kl_jw_key(&c->w, "priority");
        kl_jw_i64(&c->w, th->priority);
    }
    kl_jw_key(&c->w, "samples");
    kl_jw_arr_begin(&c->w);
    for (uint32_t k = 0; k < sp->n && !out_failed(c); k++) {
        uint32_t sid = s[idx[k]].stack_id;
        const uint32_t *st = kl_stack_at(d, sid);
        uint32_t len = kl_stack_len(d, sid);
        kl_jw_arr_begin(&c->w);
        for (uint32_t j = len; j-- > 0;)
            kl_jw_u64(&c->w, fmap[st[j]]);
        kl_jw_arr_end(&c->w);
    }
    kl_jw_arr_end(&c->w);
    put_u64(c, "startValue", s[idx[0]].ts_ns - base);
    write_thread_id(c, th);
    put_str(c, "type", KL_STR("sampled"));
    put_str(c, "unit", KL_STR("nanoseconds"));
    kl_jw_key(&c->w, "weights");
    kl_jw_arr_begin(&c->w);
    for (uint32_t k = 0; k + 1 < sp->n; k++)
        kl_jw_u64(&c->w, s[idx[k + 1]].ts_ns - s[idx[k]].ts_ns);
    kl_jw_u64(&c->w, 0);
    kl_jw_arr_end(&c->w);
    kl_jw_obj_end(&c->w);
}

static bool is_main_by_name(struct kl_str name)
{
    return kl_str_eq_c(name, "main") || kl_str_eq_c(name, "MainThread");
}

static int write_sampled(struct ctx *c)
{
    const struct kl_profile *p = c->p;
    const struct kl_sample_data *d = &p->data;
    size_t n = d->samples.len, nstacks = kl_stack_count(d), nframes = d->frames.len;
    size_t nthreads = d->threads.len;

    for (size_t i = 0; i < n; i++) {
        const struct kl_sample *s = &d->samples.items[i];
        if (s->stack_id >= nstacks)
            return kl_err_set(c->err, KL_R_PROFILING_MALFORMED_SAMPLES,
                              "sample %zu: stack_id %u out of range", i, s->stack_id);
        if (s->thread >= nthreads)
            return kl_err_set(c->err, KL_R_PROFILING_MALFORMED_SAMPLES,
                              "sample %zu: thread index %u out of range", i, s->thread);
    }

    /* Time order, ties kept in array order (vroom sorts stably). */
    struct ts_idx *order = kl_arena_alloc(c->a, (n ? n : 1) * sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[i] = (struct ts_idx){d->samples.items[i].ts_ns, (uint32_t)i};
    qsort(order, n, sizeof *order, cmp_ts_idx);

    /* One profile per thread, in order of first sample; bucket the samples CSR-style. */
    uint32_t *prof_of = kl_arena_alloc(c->a, (nthreads ? nthreads : 1) * sizeof *prof_of);
    memset(prof_of, 0xff, (nthreads ? nthreads : 1) * sizeof *prof_of);
    struct sprof *profs = kl_arena_calloc(c->a, nthreads ? nthreads : 1, sizeof *profs);
    size_t nprof = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t t = d->samples.items[order[k].i].thread;
        if (prof_of[t] == UINT32_MAX) {
            prof_of[t] = (uint32_t)nprof;
            profs[nprof++].thread = t;
        }
        profs[prof_of[t]].n++;
    }
    uint32_t off = 0;
    for (size_t i = 0; i < nprof; i++) {
        profs[i].off = off;
        off += profs[i].n;
        profs[i].n = 0;
    }
    uint32_t *byprof = kl_arena_alloc(c->a, (n ? n : 1) * sizeof *byprof);
    for (size_t k = 0; k < n; k++) {
        struct sprof *sp = &profs[prof_of[d->samples.items[order[k].i].thread]];
        byprof[sp->off + sp->n++] = order[k].i;
    }

    /* Number the frames: first seen, samples in time order, each stack root to leaf. */
    uint32_t *fmap = kl_arena_alloc(c->a, (nframes ? nframes : 1) * sizeof *fmap);
    memset(fmap, 0xff, (nframes ? nframes : 1) * sizeof *fmap);
    uint32_t *reps = kl_arena_alloc(c->a, (nframes ? nframes : 1) * sizeof *reps);
    size_t nout = 0;
    size_t tcap = 16;
    while (tcap < nframes * 2)
        tcap <<= 1;
    uint32_t *table = kl_arena_alloc(c->a, tcap * sizeof *table);
    memset(table, 0xff, tcap * sizeof *table);
    uint8_t *seen = kl_arena_calloc(c->a, nstacks ? nstacks : 1, 1);
    for (size_t k = 0; k < n; k++) {
        uint32_t sid = d->samples.items[order[k].i].stack_id;
        if (seen[sid])
            continue;
        seen[sid] = 1;
        const uint32_t *st = kl_stack_at(d, sid);
        for (uint32_t j = kl_stack_len(d, sid); j-- > 0;) {
            uint32_t fi = st[j];
            if (fi >= nframes)
                return kl_err_set(c->err, KL_R_PROFILING_MALFORMED_STACKS,
                                  "stack %u: frame index %u out of range", sid, fi);
            if (fmap[fi] != UINT32_MAX)
                continue;
            const struct kl_frame *f = &d->frames.items[fi];
            size_t mask = tcap - 1, h = (size_t)frame_key_hash(f) & mask;
            while (table[h] != UINT32_MAX && !frame_key_eq(&d->frames.items[reps[table[h]]], f))
                h = (h + 1) & mask;
            if (table[h] == UINT32_MAX) {
                table[h] = (uint32_t)nout;
                reps[nout++] = fi;
            }
            fmap[fi] = table[h];
        }
    }

    /* Main thread: the transaction's active thread (v1), else a thread called main or
     * running on the main queue (v2 chunks carry no active thread). */
    size_t active = 0;
    bool have_active = false;
    for (size_t i = 0; i < nprof; i++) {
        struct sprof *sp = &profs[i];
        const struct kl_thread *th = &d->threads.items[sp->thread];
        const struct kl_sample *first = &d->samples.items[byprof[sp->off]];
        if (p->transaction.present) {
            sp->is_main = th->id_num == p->transaction.active_thread_id;
        } else {
            struct kl_str q = KL_STR("");
            if (first->queue >= 0 && (size_t)first->queue < d->queues.len)
                q = d->queues.items[first->queue].label;
            sp->is_main = !have_active && (is_main_by_name(th->name) ||
                                           (!th->name.len && kl_str_eq_c(q, MAIN_QUEUE_LABEL)));
        }
        sp->name = sample_thread_name(d, th, first, sp->is_main);
        if (sp->is_main && !have_active) {
            active = i;
            have_active = true;
        }
    }

    /* v1 times are already relative to the profile start; v2 ones are made relative to
     * the chunk's first sample so they stay exact in a JavaScript double. */
    uint64_t base = (p->kind == KL_KIND_SAMPLE_V2 && n) ? order[0].ts : 0;
    uint64_t duration = n ? order[n - 1].ts - order[0].ts : 0;

    write_head(c, active, KL_STR(""), duration);
    kl_jw_arr_begin(&c->w);
    for (size_t i = 0; i < nprof && !out_failed(c); i++)
        write_sampled_profile(c, &profs[i], byprof, fmap, base);
    kl_jw_arr_end(&c->w);
    write_mid(c);
    kl_jw_arr_begin(&c->w);
    for (size_t i = 0; i < nout && !out_failed(c); i++)
        write_sample_frame(c, &d->frames.items[reps[i]], (uint32_t)i);
    kl_jw_arr_end(&c->w);
    write_tail(c);
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Android method traces: one evented profile per thread                               */

enum aframe_kind { AF_METHOD, AF_INLINE, AF_UNKNOWN };

struct aframe {
    const struct kl_android_method *m; /* NULL for AF_UNKNOWN */
    uint64_t id;                       /* method id, for AF_UNKNOWN names */
    uint8_t kind;                      /* enum aframe_kind */
};

struct mrange {
    uint32_t first, n; /* the method's frames: frames[first .. first + n) */
};

struct aevent {
    uint64_t at;
    uint32_t frame;
    uint8_t open;
};

struct athread {
    uint64_t id;
    uint64_t start, end; /* first and last event time (after the monotonic clamp) */
    bool started;
    bool listed; /* already placed in the output order */
    int depth;   /* enters minus exits, including enters dropped past the depth limit */
    uint64_t fix_latest, fix_max; /* wall-clock repair state (vroom FixSamplesTime) */
    KL_VEC(uint64_t) stack;       /* method ids currently open */
    KL_VEC(struct aevent) events;
};

struct actx {
    struct ctx *c;
    KL_VEC(struct aframe) frames;
    KL_VEC(struct mrange) ranges;
    struct u64map method_map; /* method id -> index into ranges */
    struct athread *threads;
    size_t nthreads;
};

static bool android_is_app(const struct kl_android_method *m)
{
    static const char *const sys[] = {
        "android.", "androidx.", "com.android.", "com.google.android.", "com.motorola.", "java.",
        "javax.",   "kotlin.",   "kotlinx.",     "retrofit2.",          "sun.",
    };
    if (m->in_app != KL_UNSET)
        return m->in_app == KL_TRUE;
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
        if (kl_str_starts(m->class_name, sys[i]))
            return false;
    return true;
}

/* "Class.method(sig)"; constructors ("<init>") drop ".method"; no class: the bare name. */
static struct kl_str android_full_name(struct ctx *c, const struct kl_android_method *m)
{
    if (!m->class_name.len)
        return nz(m->name);
    bool init = kl_str_eq_c(m->name, "<init>");
    size_t n = m->class_name.len + (init ? 0 : 1 + m->name.len) + m->signature.len;
    char *s = kl_arena_alloc(c->a, n + 1), *q = s;
    memcpy(q, m->class_name.ptr, m->class_name.len);
    q += m->class_name.len;
    if (!init) {
        *q++ = '.';
        if (m->name.len)
            memcpy(q, m->name.ptr, m->name.len);
        q += m->name.len;
    }
    if (m->signature.len)
        memcpy(q, m->signature.ptr, m->signature.len);
    q += m->signature.len;
    *q = '\0';
    return kl_str_make(s, n);
}

/* The class name up to its last '.', or all of it. */
static struct kl_str android_package(const struct kl_android_method *m)
{
    struct kl_str cl = nz(m->class_name);
    for (size_t i = cl.len; i-- > 0;)
        if (cl.ptr[i] == '.')
            return kl_str_make(cl.ptr, i);
    return cl;
}

static void write_android_frame(struct ctx *c, const struct aframe *af)
{
    struct out_frame o = {0};
    if (af->kind == AF_UNKNOWN) {
        o.name = scratch_fmt(c, "unknown (id %" PRIu64 ")", af->id);
        o.file = KL_STR("unknown");
        o.image = KL_STR("unknown");
        o.fingerprint = fingerprint(o.image, o.name);
        write_frame(c, &o);
        return;
    }
    const struct kl_android_method *m = af->m;
    struct kl_str full = android_full_name(c, m);
    struct kl_str pkg = android_package(m);
    o.file = m->source_file;
    o.line = m->source_line;
    o.is_app = android_is_app(m);
    o.fingerprint = fingerprint(kl_package_trim(pkg), full);
    if (af->kind == AF_INLINE) {
        o.name = nz(m->name);
        o.image = m->class_name;
        o.is_inline = true;
    } else {
        o.name = full;
        o.image = pkg;
    }
    write_frame(c, &o);
}

static void add_method_frames(struct actx *ac, const struct kl_android_method *m)
{
    struct kl_arena *a = ac->c->a;
    struct mrange r = {(uint32_t)ac->frames.len, 0};
    if (m->n_inline) {
        for (uint32_t i = 0; i < m->n_inline; i++) {
            struct aframe af = {&m->inline_frames[i], m->id, AF_INLINE};
            kl_vec_push(a, &ac->frames, af);
        }
        r.n = m->n_inline;
    } else {
        struct aframe af = {m, m->id, AF_METHOD};
        kl_vec_push(a, &ac->frames, af);
        r.n = 1;
    }
    /* A repeated method id keeps its first definition; later frames stay unused. */
    if (u64map_find(&ac->method_map, m->id) == UINT32_MAX) {
        u64map_put(a, &ac->method_map, m->id, (uint32_t)ac->ranges.len);
        kl_vec_push(a, &ac->ranges, r);
    }
}

/* Open or close every frame of a method. Inline frames are listed callee first: open the
 * outermost caller first and close the callee first, so the events nest. A method id the
 * trace never defined is given an "unknown (id N)" frame on first use. */
static void emit(struct actx *ac, struct athread *th, uint64_t method_id, bool open, uint64_t at)
{
    struct kl_arena *a = ac->c->a;
    uint32_t ri = u64map_find(&ac->method_map, method_id);
    if (ri == UINT32_MAX) {
        struct aframe af = {NULL, method_id, AF_UNKNOWN};
        struct mrange r = {(uint32_t)ac->frames.len, 1};
        kl_vec_push(a, &ac->frames, af);
        ri = (uint32_t)ac->ranges.len;
        kl_vec_push(a, &ac->ranges, r);
        u64map_put(a, &ac->method_map, method_id, ri);
    }
    struct mrange r = ac->ranges.items[ri];
    kl_vec_reserve(a, &th->events, r.n);
    for (uint32_t k = 0; k < r.n; k++) {
        uint32_t f = open ? r.first + r.n - 1 - k : r.first + k;
        th->events.items[th->events.len++] = (struct aevent){at, f, open};
    }
}

enum aclock { CLOCK_GLOBAL, CLOCK_CPU, CLOCK_WALL };

/* The event time in ns since trace start for the trace's clock (vroom TimestampGetter). */
static uint64_t raw_time(enum aclock clk, const struct kl_android_event *e, uint64_t start)
{
    switch (clk) {
    case CLOCK_GLOBAL:
        return e->global_ns >= start ? e->global_ns - start : 0;
    case CLOCK_CPU:
        return e->cpu_ns;
    default:
        return e->wall_ns;
    }
}

/* vroom's repair of a wall clock that went backwards: after the first regression each
 * event advances from the thread's maximum by its raw delta, or by 1 s when it fell below
 * both. When the raw delta would take the time below zero (vroom wraps around there) the
 * 1 s step is used too. */
static uint64_t repaired_time(struct athread *th, uint64_t cur)
{
    uint64_t t;
    if (cur < th->fix_max && cur < th->fix_latest)
        t = th->fix_max + NS_PER_S;
    else if (cur >= th->fix_latest)
        t = th->fix_max + (cur - th->fix_latest);
    else if (th->fix_latest - cur <= th->fix_max)
        t = th->fix_max - (th->fix_latest - cur);
    else
        t = th->fix_max + NS_PER_S;
    if (t > th->fix_max)
        th->fix_max = t;
    th->fix_latest = cur;
    return t;
}

static int write_android(struct ctx *c)
{
    const struct kl_profile *p = c->p;
    const struct kl_android_trace *tr = &p->android;
    struct actx ac = {.c = c};
    size_t nev = tr->events.len;

    u64map_init(c->a, &ac.method_map, tr->methods.len);
    for (size_t i = 0; i < tr->methods.len; i++)
        add_method_frames(&ac, &tr->methods.items[i]);

    /* Thread states in order of first event. */
    struct u64map tmap;
    u64map_init(c->a, &tmap, 16);
    KL_VEC(struct athread) ths = {0};
    uint32_t *tix = kl_arena_alloc(c->a, (nev ? nev : 1) * sizeof *tix);
    for (size_t i = 0; i < nev; i++) {
        uint64_t tid = tr->events.items[i].thread_id;
        uint32_t t = u64map_find(&tmap, tid);
        if (t == UINT32_MAX) {
            struct athread z = {.id = tid};
            t = (uint32_t)ths.len;
            kl_vec_push(c->a, &ths, z);
            u64map_put(c->a, &tmap, tid, t);
        }
        tix[i] = t;
    }

    enum aclock clk = kl_str_eq_c(tr->clock, "Global") ? CLOCK_GLOBAL
                      : kl_str_eq_c(tr->clock, "Cpu")  ? CLOCK_CPU
                                                       : CLOCK_WALL;
    size_t regression = nev;
    if (clk == CLOCK_WALL) {
        for (size_t i = 0; i < nev; i++) {
            struct athread *th = &ths.items[tix[i]];
            uint64_t cur = tr->events.items[i].wall_ns;
            if (cur < th->fix_latest) {
                regression = i;
                break;
            }
            th->fix_latest = cur;
            if (cur > th->fix_max)
                th->fix_max = cur;
        }
    }

    for (size_t i = 0; i < nev; i++) {
        const struct kl_android_event *e = &tr->events.items[i];
        struct athread *th = &ths.items[tix[i]];
        uint64_t at =
            i >= regression ? repaired_time(th, e->wall_ns) : raw_time(clk, e, tr->start_time);
        /* speedscope rejects time going backwards within a profile */
        if (th->started && at < th->end)
            at = th->end;
        if (!th->started) {
            th->start = at;
            th->started = true;
        }
        th->end = at;

        switch (e->action) {
        case KL_ANDROID_ENTER:
            if (++th->depth > KL_SPEEDSCOPE_MAX_DEPTH)
                continue;
            kl_vec_push(c->a, &th->stack, e->method_id);
            emit(&ac, th, e->method_id, true, at);
            break;
        case KL_ANDROID_EXIT:
        case KL_ANDROID_UNWIND: {
            if (--th->depth > KL_SPEEDSCOPE_MAX_DEPTH)
                continue;
            /* Close everything above the method too (its callees' exits were lost); an
             * exit for a method that is not open is dropped. */
            size_t j = th->stack.len;
            while (j > 0 && th->stack.items[j - 1] != e->method_id)
                j--;
            if (j == 0)
                continue;
            for (size_t k = th->stack.len; k-- > j - 1;)
                emit(&ac, th, th->stack.items[k], false, at);
            th->stack.len = j - 1;
            break;
        }
        default:
            return kl_err_set(c->err, KL_R_PROFILING_INVALID_SAMPLED_PROFILE,
                              "event %zu: invalid method action %u", i, e->action);
        }
    }
    uint64_t max_at = 0;
    for (size_t t = 0; t < ths.len; t++) {
        struct athread *th = &ths.items[t];
        for (size_t k = th->stack.len; k-- > 0;)
            emit(&ac, th, th->stack.items[k], false, th->end);
        th->stack.len = 0;
        if (th->end > max_at)
            max_at = th->end;
    }

    /* Output order and names come from the trace's thread list; threads it does not list
     * are left out, as in vroom. The thread named "main" is the active one. */
    uint32_t *outs = kl_arena_alloc(c->a, (tr->threads.len ? tr->threads.len : 1) * sizeof *outs);
    struct kl_str *names =
        kl_arena_alloc(c->a, (tr->threads.len ? tr->threads.len : 1) * sizeof *names);
    size_t nout = 0, active = 0;
    bool have_active = false;
    for (size_t i = 0; i < tr->threads.len; i++) {
        uint32_t t = u64map_find(&tmap, tr->threads.items[i].id);
        if (t == UINT32_MAX || ths.items[t].listed)
            continue;
        ths.items[t].listed = true;
        if (!have_active && kl_str_eq_c(tr->threads.items[i].name, "main")) {
            active = nout;
            have_active = true;
        }
        names[nout] = nz(tr->threads.items[i].name);
        outs[nout++] = t;
    }

    uint64_t duration = kl_profile_is_chunk(p) ? max_at : p->duration_ns;
    write_head(c, active, tr->clock, duration);
    kl_jw_arr_begin(&c->w);
    for (size_t i = 0; i < nout && !out_failed(c); i++) {
        const struct athread *th = &ths.items[outs[i]];
        kl_jw_obj_begin(&c->w);
        put_u64(c, "endValue", th->end);
        kl_jw_key(&c->w, "events");
        kl_jw_arr_begin(&c->w);
        for (size_t k = 0; k < th->events.len; k++) {
            const struct aevent *ev = &th->events.items[k];
            kl_jw_obj_begin(&c->w);
            put_str(c, "type", ev->open ? KL_STR("O") : KL_STR("C"));
            put_u64(c, "frame", ev->frame);
            put_u64(c, "at", ev->at);
            kl_jw_obj_end(&c->w);
        }
        kl_jw_arr_end(&c->w);
        put_str(c, "name", names[i]);
        put_u64(c, "startValue", th->start);
        put_u64(c, "threadID", th->id);
        put_str(c, "type", KL_STR("evented"));
        put_str(c, "unit", KL_STR("nanoseconds"));
        kl_jw_obj_end(&c->w);
    }
    kl_jw_arr_end(&c->w);
    write_mid(c);
    kl_jw_arr_begin(&c->w);
    for (size_t i = 0; i < ac.frames.len && !out_failed(c); i++)
        write_android_frame(c, &ac.frames.items[i]);
    kl_jw_arr_end(&c->w);
    write_tail(c);
    return 0;
}

/* ---------------------------------------------------------------------------------- */

/* Legacy Android profiles are versioned "<version_name> (<version_code>)" (vroom
 * FormatVersion); everything else by its release. */
static struct kl_str version_of(struct ctx *c)
{
    const struct kl_profile *p = c->p;
    if (p->kind != KL_KIND_ANDROID)
        return nz(p->release);
    if (!p->version_code.len)
        return nz(p->version_name);
    size_t n = p->version_name.len + p->version_code.len + 3;
    char *s = kl_arena_alloc(c->a, n + 1), *q = s;
    if (p->version_name.len)
        memcpy(q, p->version_name.ptr, p->version_name.len);
    q += p->version_name.len;
    memcpy(q, " (", 2);
    q += 2;
    memcpy(q, p->version_code.ptr, p->version_code.len);
    q += p->version_code.len;
    *q++ = ')';
    *q = '\0';
    return kl_str_make(s, n);
}

int kl_speedscope_write(const struct kl_profile *p, struct kl_buf *out, struct kl_err *err)
{
    struct kl_arena scratch;
    kl_arena_init(&scratch);
    struct ctx c = {.p = p, .a = &scratch, .out = out, .err = err};
    kl_jw_init(&c.w, out);
    c.version = version_of(&c);

    int rc;
    if (p->android.present)
        rc = write_android(&c);
    else if (p->data.present)
        rc = write_sampled(&c);
    else
        rc = kl_err_set(err, KL_R_PROFILING_INVALID_SAMPLED_PROFILE,
                        "profile has neither samples nor a decoded android trace");
    kl_arena_release(&scratch);
    if (rc == 0 && kl_err_is_set(&out->err))
        rc = kl_err_set(err, out->err.reason, "%s", out->err.msg);
    return rc;
}

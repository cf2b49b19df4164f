/* calltree.c - building call trees from samples and from Android method-trace events
 *
 * Both builders append nodes to one growing array in pre-order, which holds because new
 * nodes are only ever created on the rightmost path of a thread's forest:
 *   - sample formats: a sample walks its stack from the root and either extends the last
 *     child of the node it stands on (same frame content, and that child ends exactly at
 *     this sample's time) or opens a new last child; so the walk stays on the rightmost
 *     spine, kept as an array of node indices per depth;
 *   - Android events: a node is created as a child of the top of the thread's stack, and a
 *     node once popped never gets children again.
 * Threads are built one after the other, so each thread's nodes are contiguous.
 *
 * Scratch memory (index maps, per-event times, node keys) is malloc'd and freed before
 * returning; the growing frame, node and thread arrays become the result's, freed when the
 * caller's arena is released.
 */
#include "calltree/calltree.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "calltree/calltree_int.h"
#include "normalize/normalize.h"

#define NS_PER_SAMPLE_ANDROID 10000000ULL /* vroomrs's 10 ms per sample for event trees */
#define NS_PER_S 1000000000ULL

/* ------------------------------------------------------------------------------------ */
/* The builder: output arrays and the frame table                                       */

struct builder {
    struct kl_arena *a;
    struct kl_err *err;
    struct kl_cframe *frames;
    uint32_t n_frames, cap_frames;
    uint32_t *ftab; /* open addressing over frames: index + 1, 0 = empty */
    uint32_t ftab_cap;
    struct kl_cnode *nodes;
    uint64_t *keys; /* per node: the frame key it was opened with (sample formats) */
    uint32_t n_nodes, cap_nodes;
    struct kl_cthread *threads;
    uint32_t n_threads, cap_threads;
};

static void builder_free(struct builder *b)
{
    free(b->frames);
    free(b->ftab);
    free(b->nodes);
    free(b->keys);
    free(b->threads);
}

static uint64_t cframe_hash(const struct kl_cframe *f)
{
    uint64_t h = kl_fnv1a64(f->name.ptr, f->name.len);
    h = kl_fnv1a64_update(h, "\0", 1);
    h = kl_fnv1a64_update(h, f->package.ptr, f->package.len);
    h = kl_fnv1a64_update(h, "\0", 1);
    h = kl_fnv1a64_update(h, f->path.ptr, f->path.len);
    uint32_t tail[3] = {f->line, f->flags, kl_str_is_set(f->path)};
    return kl_fnv1a64_update(h, tail, sizeof tail);
}

static bool cframe_eq(const struct kl_cframe *x, const struct kl_cframe *y)
{
    return x->line == y->line && x->flags == y->flags && kl_str_eq(x->name, y->name) &&
           kl_str_eq(x->package, y->package) && kl_str_eq(x->path, y->path) &&
           kl_str_is_set(x->path) == kl_str_is_set(y->path);
}

/* The index of f in the frame table, adding it when new. */
static uint32_t builder_frame(struct builder *b, const struct kl_cframe *f)
{
    if ((uint64_t)(b->n_frames + 1) * 2 > b->ftab_cap) {
        uint32_t cap = b->ftab_cap ? b->ftab_cap * 2 : 256;
        uint32_t *t = kl_xcalloc(cap, sizeof *t);
        for (uint32_t i = 0; i < b->n_frames; i++) {
            uint32_t j = (uint32_t)cframe_hash(&b->frames[i]) & (cap - 1);
            while (t[j])
                j = (j + 1) & (cap - 1);
            t[j] = i + 1;
        }
        free(b->ftab);
        b->ftab = t;
        b->ftab_cap = cap;
    }
    uint32_t j = (uint32_t)cframe_hash(f) & (b->ftab_cap - 1);
    while (b->ftab[j]) {
        if (cframe_eq(&b->frames[b->ftab[j] - 1], f))
            return b->ftab[j] - 1;
        j = (j + 1) & (b->ftab_cap - 1);
    }
    if (b->n_frames == b->cap_frames) {
        b->cap_frames = b->cap_frames ? b->cap_frames * 2 : 64;
        b->frames = kl_xrealloc(b->frames, (size_t)b->cap_frames * sizeof *b->frames);
    }
    b->frames[b->n_frames] = *f;
    b->frames[b->n_frames].fingerprint = kl__calltree_fingerprint(f->package, f->name);
    b->ftab[j] = ++b->n_frames;
    return b->n_frames - 1;
}

/* Append a node; -1 past KL_CALLTREE_MAX_NODES. */
static int builder_node(struct builder *b, uint32_t frame, uint32_t depth, uint64_t start,
                        uint64_t end, uint64_t key)
{
    if (b->n_nodes >= KL_CALLTREE_MAX_NODES)
        return kl_err_set(b->err, KL_R_CALLTREE_TOO_LARGE, "call tree has more than %u nodes",
                          KL_CALLTREE_MAX_NODES);
    if (b->n_nodes == b->cap_nodes) {
        b->cap_nodes = b->cap_nodes ? b->cap_nodes * 2 : 256;
        b->nodes = kl_xrealloc(b->nodes, (size_t)b->cap_nodes * sizeof *b->nodes);
        b->keys = kl_xrealloc(b->keys, (size_t)b->cap_nodes * sizeof *b->keys);
    }
    b->keys[b->n_nodes] = key;
    b->nodes[b->n_nodes++] = (struct kl_cnode){frame, depth, start, end, 1};
    return 0;
}

static struct kl_cthread *builder_thread(struct builder *b)
{
    if (b->n_threads == b->cap_threads) {
        b->cap_threads = b->cap_threads ? b->cap_threads * 2 : 8;
        b->threads = kl_xrealloc(b->threads, (size_t)b->cap_threads * sizeof *b->threads);
    }
    struct kl_cthread *t = &b->threads[b->n_threads++];
    memset(t, 0, sizeof *t);
    t->first_node = b->n_nodes;
    return t;
}

/* Hand the arrays to the arena: they are freed when it is released. Copying them in (as
 * before) touched every byte twice and faulted in fresh arena pages for all of them: on a
 * 30 MB profile (609k nodes) that was a fifth of building its flamegraph. */
static void *adopt(struct kl_arena *a, void *p, size_t n_items, size_t size)
{
    if (!p)
        return kl_arena_alloc(a, n_items * size + 1);
    kl_arena_on_release(a, free, p);
    return p;
}

static struct kl_calltree *builder_finish(struct builder *b, int64_t start_unix_ns,
                                          uint64_t duration_ns, bool android)
{
    struct kl_calltree *t = kl_arena_calloc(b->a, 1, sizeof *t);
    t->start_unix_ns = start_unix_ns;
    t->duration_ns = duration_ns;
    t->android = android;
    t->n_frames = b->n_frames;
    t->n_nodes = b->n_nodes;
    t->n_threads = b->n_threads;
    t->frames = adopt(b->a, b->frames, b->n_frames, sizeof *t->frames);
    t->nodes = adopt(b->a, b->nodes, b->n_nodes, sizeof *t->nodes);
    t->threads = adopt(b->a, b->threads, b->n_threads, sizeof *t->threads);
    b->frames = NULL;
    b->nodes = NULL;
    b->threads = NULL;
    builder_free(b);
    return t;
}

/* ------------------------------------------------------------------------------------ */
/* Aggregatable frames (spec §6.4, vroomrs should_aggregate_frame)                       */

static bool is_symbolication_platform(struct kl_str platform)
{
    return kl_str_eq_c(platform, "javascript") || kl_str_eq_c(platform, "node") ||
           kl_str_eq_c(platform, "cocoa");
}

/* vroomrs marks a javascript frame as React Native nowhere outside its tests, so every
 * javascript and node frame counts as symbolicated; cocoa frames need the symbolicator's
 * "symbolicated" status recorded in their data. */
static bool is_aggregatable(struct kl_str platform, struct kl_str function, struct kl_str mop,
                            struct kl_str deobfuscation_status, struct kl_str symbolicator_status)
{
    if (function.len == 0)
        return false;
    if (kl_str_eq_c(platform, "cocoa") && kl_str_eq_c(function, "main"))
        return false;
    if (kl_str_eq_c(platform, "android") || kl_str_eq_c(platform, "java")) {
        if (kl_str_eq_c(deobfuscation_status, "partial"))
            return false;
        if (memchr(mop.ptr ? mop.ptr : "", '.', mop.len) == NULL)
            return false;
    }
    if (is_symbolication_platform(platform)) {
        if (kl_str_eq_c(platform, "javascript") || kl_str_eq_c(platform, "node"))
            return true;
        return kl_str_eq_c(symbolicator_status, "symbolicated");
    }
    return true;
}

/* ------------------------------------------------------------------------------------ */
/* Sample formats (v1, v2, the legacy Android js_profile)                               */

struct sample_ctx {
    const struct kl_sample_data *d;
    bool v2;         /* order by ts_s, times relative to the first sample */
    uint32_t *fmap;  /* profile frame -> cframe index, UINT32_MAX until computed */
    uint64_t *fkey;  /* profile frame -> node-merge key */
    uint32_t *spine; /* node index per depth on the rightmost path */
    uint32_t cap_spine;
};

static struct kl_cframe cframe_from_frame(const struct kl_frame *f)
{
    struct kl_cframe c;
    memset(&c, 0, sizeof c);
    c.name = f->function.ptr ? f->function : KL_STR("");
    c.package = kl_frame_module_or_package(f);
    c.path = kl_str_is_set(f->abs_path) ? f->abs_path : f->filename;
    c.line = (f->flags & KL_FRAME_HAS_LINENO) ? f->lineno : 0;
    if (f->in_app != KL_FALSE)
        c.flags |= KL_CFRAME_APPLICATION;
    if (is_aggregatable(f->platform, c.name, c.package, f->data_deobfuscation_status,
                        f->data_symbolicator_status))
        c.flags |= KL_CFRAME_AGGREGATABLE;
    return c;
}

/* What vroomrs feeds its node hash for one frame: module when present (even empty), else
 * the trimmed package, else filename, else "-"; then function or "-"; then the address.
 * vroomrs chains this hash along the whole path; since a node is only ever compared with
 * children of the node the walk already stands on, comparing one frame's key is the same
 * test, short of hash collisions. */
static uint64_t frame_key(const struct kl_frame *f)
{
    struct kl_str s;
    if (kl_str_is_set(f->module))
        s = f->module;
    else if (kl_str_is_set(f->package))
        s = kl_package_trim(f->package);
    else if (kl_str_is_set(f->filename))
        s = f->filename;
    else
        s = KL_STR("-");
    uint64_t h = kl_fnv1a64(s.ptr, s.len);
    struct kl_str fn = kl_str_is_set(f->function) ? f->function : KL_STR("-");
    h = kl_fnv1a64_update(h, fn.ptr, fn.len);
    if (f->flags & KL_FRAME_HAS_ADDR)
        h = kl_fnv1a64_update(h, &f->instruction_addr, sizeof f->instruction_addr);
    return h;
}

static int sample_cmp(const struct sample_ctx *c, uint32_t x, uint32_t y)
{
    const struct kl_sample *a = &c->d->samples.items[x], *b = &c->d->samples.items[y];
    if (c->v2) {
        if (a->ts_s != b->ts_s)
            return a->ts_s < b->ts_s ? -1 : 1;
    } else if (a->ts_ns != b->ts_ns) {
        return a->ts_ns < b->ts_ns ? -1 : 1;
    }
    return x < y ? -1 : x > y;
}

/* Stable bottom-up merge sort of sample indices by time (vroomrs sorts stably too). */
static void sort_samples(const struct sample_ctx *c, uint32_t *v, size_t n)
{
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = sample_cmp(c, v[i - 1], v[i]) <= 0;
    if (sorted)
        return;
    uint32_t *tmp = kl_xmalloc(n * sizeof *tmp);
    uint32_t *src = v, *dst = tmp;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = sample_cmp(c, src[j], src[i]) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        uint32_t *s = src;
        src = dst;
        dst = s;
    }
    if (src != v)
        memcpy(v, src, n * sizeof *v);
    free(tmp);
}

/* One thread's forest from its samples (in time order); ts_base is subtracted (v2). */
static int build_sample_thread(struct builder *b, struct sample_ctx *c, const uint32_t *order,
                               size_t n, uint64_t ts_base)
{
    const struct kl_sample_data *d = c->d;
    size_t n_stacks = kl_stack_count(d);
    uint32_t spine_len = 0;
    for (size_t k = 0; k + 1 < n; k++) {
        const struct kl_sample *s = &d->samples.items[order[k]];
        if (s->stack_id >= n_stacks)
            return kl_err_set(b->err, KL_R_CALLTREE_BAD_INDEX, "sample %u: stack %u out of range",
                              order[k], s->stack_id);
        uint32_t len = kl_stack_len(d, s->stack_id);
        const uint32_t *st = kl_stack_at(d, s->stack_id);
        for (uint32_t i = 0; i < len; i++)
            if (st[i] >= d->frames.len)
                return kl_err_set(b->err, KL_R_CALLTREE_BAD_INDEX,
                                  "stack %u: frame %u out of range", s->stack_id, st[i]);
        if (len > c->cap_spine) {
            c->cap_spine = len;
            c->spine = kl_xrealloc(c->spine, (size_t)len * sizeof *c->spine);
        }
        uint64_t ts = s->ts_ns - ts_base;
        uint64_t next = d->samples.items[order[k + 1]].ts_ns - ts_base;
        for (uint32_t depth = 0; depth < len; depth++) {
            uint32_t fi = st[len - 1 - depth];
            if (c->fmap[fi] == UINT32_MAX) {
                struct kl_cframe cf = cframe_from_frame(&d->frames.items[fi]);
                c->fmap[fi] = builder_frame(b, &cf);
                c->fkey[fi] = frame_key(&d->frames.items[fi]);
            }
            if (depth < spine_len) {
                struct kl_cnode *last = &b->nodes[c->spine[depth]];
                if (b->keys[c->spine[depth]] == c->fkey[fi] && last->end_ns == ts) {
                    last->sample_count++;
                    last->end_ns = next;
                    continue;
                }
            }
            if (builder_node(b, c->fmap[fi], depth, ts, next, c->fkey[fi]) < 0)
                return -1;
            c->spine[depth] = b->n_nodes - 1;
            spine_len = depth + 1;
        }
    }
    return 0;
}

/* Which threads of a sample profile are "active": v1 the transaction's active thread and,
 * for cocoa, the first thread named "main"; the legacy Android js_profile its first listed
 * thread (vroomrs takes the only key of its thread_metadata); v2 the threads named "main"
 * (vroomrs builds every thread of a chunk; the flag only marks the main one). */
static void mark_active(const struct kl_profile *p, const struct kl_sample_data *d, bool js,
                        bool *active)
{
    size_t nt = d->threads.len;
    if (p->kind == KL_KIND_SAMPLE_V2) {
        for (size_t t = 0; t < nt; t++)
            active[t] = kl_str_eq_c(d->threads.items[t].name, "main");
        return;
    }
    if (js) {
        for (size_t t = 0; t < nt; t++)
            if (d->threads.items[t].has_metadata) {
                active[t] = true;
                break;
            }
        return;
    }
    for (size_t t = 0; t < nt; t++)
        active[t] = d->threads.items[t].id_num == p->transaction.active_thread_id;
    if (kl_str_eq_c(p->platform, "cocoa"))
        for (size_t t = 0; t < nt; t++)
            if (d->threads.items[t].has_metadata && kl_str_eq_c(d->threads.items[t].name, "main")) {
                active[t] = true;
                break;
            }
}

static struct kl_calltree *build_samples(struct builder *b, const struct kl_profile *p,
                                         const struct kl_sample_data *d, bool js,
                                         enum kl_calltree_threads which)
{
    struct sample_ctx c;
    memset(&c, 0, sizeof c);
    c.d = d;
    c.v2 = p->kind == KL_KIND_SAMPLE_V2;
    size_t ns = d->samples.len, nt = d->threads.len;
    for (size_t i = 0; i < ns; i++)
        if (d->samples.items[i].thread >= nt) {
            kl_err_set(b->err, KL_R_CALLTREE_BAD_INDEX, "sample %zu: thread %u out of range", i,
                       d->samples.items[i].thread);
            builder_free(b);
            return NULL;
        }

    uint32_t *order = kl_xmalloc((ns + 1) * sizeof *order);
    for (size_t i = 0; i < ns; i++)
        order[i] = (uint32_t)i;
    sort_samples(&c, order, ns);

    /* bucket by thread, keeping time order */
    uint32_t *off = kl_xcalloc(nt + 1, sizeof *off);
    uint32_t *by_thread = kl_xmalloc((ns + 1) * sizeof *by_thread);
    for (size_t i = 0; i < ns; i++)
        off[d->samples.items[i].thread + 1]++;
    for (size_t t = 0; t < nt; t++)
        off[t + 1] += off[t];
    uint32_t *fill = kl_xmalloc((nt + 1) * sizeof *fill);
    memcpy(fill, off, (nt + 1) * sizeof *fill);
    for (size_t i = 0; i < ns; i++)
        by_thread[fill[d->samples.items[order[i]].thread]++] = order[i];
    free(fill);

    bool *active = kl_xcalloc(nt + 1, sizeof *active);
    mark_active(p, d, js, active);

    c.fmap = kl_xmalloc((d->frames.len + 1) * sizeof *c.fmap);
    memset(c.fmap, 0xff, (d->frames.len + 1) * sizeof *c.fmap);
    c.fkey = kl_xmalloc((d->frames.len + 1) * sizeof *c.fkey);

    uint64_t base = 0, duration = 0;
    int64_t start_unix = p->timestamp_ns;
    if (ns > 0) {
        const struct kl_sample *first = &d->samples.items[order[0]];
        const struct kl_sample *last = &d->samples.items[order[ns - 1]];
        duration = last->ts_ns - first->ts_ns;
        if (c.v2) {
            base = first->ts_ns;
            start_unix = (int64_t)first->ts_ns;
        }
    }

    int rc = 0;
    bool select_all = which == KL_CALLTREE_ALL || c.v2;
    for (size_t t = 0; t < nt && rc == 0; t++) {
        if (!select_all && !active[t])
            continue;
        uint32_t first = b->n_nodes;
        rc = build_sample_thread(b, &c, by_thread + off[t], off[t + 1] - off[t], base);
        if (rc == 0 && b->n_nodes > first) {
            struct kl_cthread *th = builder_thread(b);
            th->first_node = first;
            th->n_nodes = b->n_nodes - first;
            th->id = d->threads.items[t].id;
            th->name = d->threads.items[t].name;
            th->active = active[t];
        }
    }
    free(order);
    free(off);
    free(by_thread);
    free(active);
    free(c.fmap);
    free(c.fkey);
    free(c.spine);
    if (rc < 0) {
        builder_free(b);
        return NULL;
    }
    return builder_finish(b, start_unix, duration, false);
}

/* ------------------------------------------------------------------------------------ */
/* Android method traces                                                                */

static const char *const android_system_prefixes[] = {
    "android.", "androidx.", "com.android.", "com.google.android.", "com.motorola.", "java.",
    "javax.",   "kotlin.",   "kotlinx.",     "retrofit2.",          "sun.",
};

static bool is_android_app_class(struct kl_str cls)
{
    for (size_t i = 0; i < sizeof android_system_prefixes / sizeof *android_system_prefixes; i++)
        if (kl_str_starts(cls, android_system_prefixes[i]))
            return false;
    return true;
}

/* The node frame of a method, named as vroomrs does: "Class.method<signature>", the
 * constructor "<init>" as "Class<signature>", and just the name without a class. */
static struct kl_cframe cframe_from_method(struct kl_arena *a, const struct kl_android_method *m)
{
    struct kl_cframe c;
    memset(&c, 0, sizeof c);
    if (m->class_name.len == 0) {
        c.name = m->name.ptr ? m->name : KL_STR("");
    } else {
        bool init = kl_str_eq_c(m->name, "<init>");
        size_t n = m->class_name.len + (init ? 0 : 1 + m->name.len) + m->signature.len;
        char *s = kl_arena_alloc(a, n + 1), *w = s;
        memcpy(w, m->class_name.ptr, m->class_name.len);
        w += m->class_name.len;
        if (!init) {
            *w++ = '.';
            if (m->name.len)
                memcpy(w, m->name.ptr, m->name.len);
            w += m->name.len;
        }
        if (m->signature.len)
            memcpy(w, m->signature.ptr, m->signature.len);
        w += m->signature.len;
        *w = '\0';
        c.name = kl_str_make(s, n);
    }
    struct kl_str pkg = m->class_name;
    for (size_t i = pkg.len; i > 0; i--)
        if (pkg.ptr[i - 1] == '.') {
            pkg.len = i - 1;
            break;
        }
    c.package = pkg.len ? kl_package_trim(pkg) : KL_STR("");
    if (m->source_file.len)
        c.path = m->source_file;
    c.line = m->has_source_line ? m->source_line : 0;
    bool in_app =
        m->in_app != KL_UNSET ? m->in_app == KL_TRUE : is_android_app_class(m->class_name);
    if (in_app)
        c.flags |= KL_CFRAME_APPLICATION;
    if (is_aggregatable(m->platform, c.name, c.package, m->data_deobfuscation_status, KL_STR_NULL))
        c.flags |= KL_CFRAME_AGGREGATABLE;
    return c;
}

struct method_ref {
    uint64_t id;
    uint32_t idx;
};

static int method_ref_cmp(const void *x, const void *y)
{
    const struct method_ref *a = x, *b = y;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

struct android_ctx {
    const struct kl_android_trace *tr;
    uint64_t *ts;   /* per event: its time on the chosen clock, relative to start */
    uint32_t *slot; /* per event: its thread's slot */
    uint64_t *tids; /* per slot: thread id, in order of first appearance */
    uint32_t n_slots;
    uint32_t *ev_off; /* per slot: its events are ev_idx[ev_off[s] .. ev_off[s + 1]) */
    uint32_t *ev_idx;
    struct method_ref *by_id; /* methods sorted by id (the last of equal ids wins) */
    uint32_t n_by_id;
    uint32_t *mframe; /* per method: cframe index, UINT32_MAX until computed */
    uint32_t unknown; /* the cframe of "unknown.unknown", UINT32_MAX until needed */
};

static const struct kl_android_method *find_method(const struct android_ctx *c, uint64_t id,
                                                   uint32_t *idx)
{
    uint32_t lo = 0, hi = c->n_by_id;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->by_id[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* last of the run of equal ids */
    const struct kl_android_method *m = NULL;
    while (lo < c->n_by_id && c->by_id[lo].id == id) {
        m = &c->tr->methods.items[c->by_id[lo].idx];
        *idx = c->by_id[lo].idx;
        lo++;
    }
    return m;
}

/* Thread slots in order of first appearance; a small open-addressing map id -> slot. */
static void android_slots(struct android_ctx *c)
{
    size_t ne = c->tr->events.len;
    uint32_t cap = 64;
    while (cap < 4 * 1024 && cap < ne * 2)
        cap *= 2;
    uint32_t *tab = kl_xcalloc(cap, sizeof *tab);
    uint32_t cap_ids = 8;
    c->tids = kl_xmalloc(cap_ids * sizeof *c->tids);
    c->slot = kl_xmalloc((ne + 1) * sizeof *c->slot);
    for (size_t i = 0; i < ne; i++) {
        uint64_t id = c->tr->events.items[i].thread_id;
        uint32_t j = (uint32_t)kl_fnv1a64(&id, sizeof id) & (cap - 1);
        while (tab[j] && c->tids[tab[j] - 1] != id)
            j = (j + 1) & (cap - 1);
        if (!tab[j]) {
            if (c->n_slots == cap_ids) {
                cap_ids *= 2;
                c->tids = kl_xrealloc(c->tids, cap_ids * sizeof *c->tids);
            }
            c->tids[c->n_slots++] = id;
            tab[j] = c->n_slots;
            if ((uint64_t)c->n_slots * 2 > cap) {
                uint32_t ncap = cap * 2;
                uint32_t *nt = kl_xcalloc(ncap, sizeof *nt);
                for (uint32_t s = 0; s < c->n_slots; s++) {
                    uint32_t k = (uint32_t)kl_fnv1a64(&c->tids[s], sizeof id) & (ncap - 1);
                    while (nt[k])
                        k = (k + 1) & (ncap - 1);
                    nt[k] = s + 1;
                }
                free(tab);
                tab = nt;
                cap = ncap;
            }
            c->slot[i] = c->n_slots - 1;
        } else {
            c->slot[i] = tab[j] - 1;
        }
    }
    free(tab);
}

/* vroomrs's repair of wall clocks that went backwards (a client-side overflow): from the
 * first event whose wall time is below its thread's previous one, every wall time becomes
 * the thread's max so far plus the raw step, or max + 1 s when it fell below both. */
static void fix_wall_times(struct android_ctx *c, uint64_t *wall)
{
    size_t ne = c->tr->events.len;
    uint64_t *mx = kl_xcalloc(c->n_slots + 1, sizeof *mx);
    uint64_t *latest = kl_xcalloc(c->n_slots + 1, sizeof *latest);
    bool *seen = kl_xcalloc(c->n_slots + 1, sizeof *seen);
    size_t reg = ne;
    for (size_t i = 0; i < ne; i++) {
        const struct kl_android_event *e = &c->tr->events.items[i];
        if (!e->monotonic || !e->has_wall)
            continue;
        uint32_t s = c->slot[i];
        if (seen[s] && e->wall_ns < latest[s]) {
            reg = i;
            break;
        }
        latest[s] = e->wall_ns;
        mx[s] = seen[s] && mx[s] > e->wall_ns ? mx[s] : e->wall_ns;
        seen[s] = true;
    }
    for (size_t i = reg; i < ne; i++) {
        const struct kl_android_event *e = &c->tr->events.items[i];
        if (!e->monotonic || !e->has_wall)
            continue;
        uint32_t s = c->slot[i];
        uint64_t cur = e->wall_ns, m = mx[s], l = latest[s], t;
        if (cur < m && cur < l)
            t = m + NS_PER_S;
        else
            t = m + (cur - l);
        mx[s] = t > m ? t : m;
        latest[s] = cur;
        wall[i] = t;
    }
    free(mx);
    free(latest);
    free(seen);
}

static void event_times(struct android_ctx *c)
{
    const struct kl_android_trace *tr = c->tr;
    size_t ne = tr->events.len;
    c->ts = kl_xmalloc((ne + 1) * sizeof *c->ts);
    if (kl_str_eq_c(tr->clock, "Global")) {
        /* wraps below start_time as vroomrs does (u64 arithmetic in a release build) */
        for (size_t i = 0; i < ne; i++) {
            const struct kl_android_event *e = &tr->events.items[i];
            c->ts[i] = (e->has_global ? e->global_ns : 0) - tr->start_time;
        }
    } else if (kl_str_eq_c(tr->clock, "Cpu")) {
        for (size_t i = 0; i < ne; i++) {
            const struct kl_android_event *e = &tr->events.items[i];
            c->ts[i] = e->monotonic && e->has_cpu ? e->cpu_ns : 0;
        }
    } else {
        for (size_t i = 0; i < ne; i++) {
            const struct kl_android_event *e = &tr->events.items[i];
            c->ts[i] = e->monotonic && e->has_wall ? e->wall_ns : 0;
        }
        fix_wall_times(c, c->ts);
    }
}

/* Close node n at ts: the end, and vroomrs's sample count of one per started 10 ms. An end
 * before the start (a clock going backwards) is clamped to the start instead of wrapping. */
static void android_close(struct kl_cnode *n, uint64_t ts)
{
    n->end_ns = ts < n->start_ns ? n->start_ns : ts;
    uint64_t d = n->end_ns - n->start_ns;
    n->sample_count = (uint32_t)(d / NS_PER_SAMPLE_ANDROID + (d % NS_PER_SAMPLE_ANDROID != 0));
}

/* One thread's forest from its events. quirk_zero_end: vroomrs's final close pass gives a
 * node that ended at time 0 its parent's end (legacy profiles, whose times start at 0). */
static int build_android_thread(struct builder *b, struct android_ctx *c, uint32_t slot,
                                bool quirk_zero_end)
{
    const struct kl_android_trace *tr = c->tr;
    uint32_t first = b->n_nodes;
    /* The stack can hold more than 128 nodes: an exit whose method is not on it leaves it
     * intact while the depth counter still drops. */
    uint32_t cap = 64, len = 0;
    uint32_t *stack = kl_xmalloc(cap * sizeof *stack);
    uint64_t *stack_mid = kl_xmalloc(cap * sizeof *stack_mid);
    int64_t depth = 0;
    uint64_t max_ts = 0;
    int rc = 0;
    for (uint32_t k = c->ev_off[slot]; k < c->ev_off[slot + 1] && rc == 0; k++) {
        uint32_t i = c->ev_idx[k];
        const struct kl_android_event *e = &tr->events.items[i];
        uint64_t ts = c->ts[i];
        if (ts > max_ts)
            max_ts = ts;
        if (e->action == KL_ANDROID_ENTER) {
            if (++depth > KL_CALLTREE_ANDROID_MAX_DEPTH)
                continue;
            uint32_t mi = 0, fr;
            if (find_method(c, e->method_id, &mi)) {
                if (c->mframe[mi] == UINT32_MAX) {
                    struct kl_cframe cf = cframe_from_method(b->a, &tr->methods.items[mi]);
                    c->mframe[mi] = builder_frame(b, &cf);
                }
                fr = c->mframe[mi];
            } else {
                if (c->unknown == UINT32_MAX) {
                    struct kl_android_method um;
                    memset(&um, 0, sizeof um);
                    um.class_name = KL_STR("unknown");
                    um.name = KL_STR("unknown");
                    struct kl_cframe cf = cframe_from_method(b->a, &um);
                    c->unknown = builder_frame(b, &cf);
                }
                fr = c->unknown;
            }
            if (len == cap) {
                cap *= 2;
                stack = kl_xrealloc(stack, cap * sizeof *stack);
                stack_mid = kl_xrealloc(stack_mid, cap * sizeof *stack_mid);
            }
            rc = builder_node(b, fr, len, ts, 0, 0);
            stack[len] = b->n_nodes - 1;
            stack_mid[len++] = e->method_id;
        } else {
            if (--depth >= KL_CALLTREE_ANDROID_MAX_DEPTH || len == 0)
                continue;
            /* Pop down to the node of this method, closing each; when the method is not
             * on the stack every node is closed and the stack kept as it was (vroomrs
             * never records exits per method, so its skip rule never fires). */
            int64_t j = (int64_t)len - 1;
            for (; j >= 0; j--) {
                android_close(&b->nodes[stack[j]], ts);
                if (stack_mid[j] == e->method_id)
                    break;
            }
            if (j >= 0)
                len = (uint32_t)j;
        }
    }
    for (uint32_t j = len; j > 0; j--)
        android_close(&b->nodes[stack[j - 1]], max_ts);
    free(stack);
    free(stack_mid);
    if (rc < 0)
        return -1;
    if (quirk_zero_end && b->n_nodes > first) {
        uint32_t max_depth = 0;
        for (uint32_t i = first; i < b->n_nodes; i++)
            if (b->nodes[i].depth > max_depth)
                max_depth = b->nodes[i].depth;
        uint64_t *ends = kl_xmalloc(((size_t)max_depth + 1) * sizeof *ends);
        for (uint32_t i = first; i < b->n_nodes; i++) {
            struct kl_cnode *n = &b->nodes[i];
            uint64_t parent_end = n->depth == 0 ? max_ts : ends[n->depth - 1];
            if (n->end_ns == 0)
                n->end_ns = parent_end < n->start_ns ? n->start_ns : parent_end;
            ends[n->depth] = n->end_ns;
        }
        free(ends);
    }
    return 0;
}

static struct kl_calltree *build_android(struct builder *b, const struct kl_profile *p,
                                         enum kl_calltree_threads which)
{
    const struct kl_android_trace *tr = &p->android;
    struct android_ctx c;
    memset(&c, 0, sizeof c);
    c.tr = tr;
    c.unknown = UINT32_MAX;
    size_t nm = tr->methods.len;
    c.by_id = kl_xmalloc((nm + 1) * sizeof *c.by_id);
    for (size_t i = 0; i < nm; i++)
        c.by_id[i] = (struct method_ref){tr->methods.items[i].id, (uint32_t)i};
    qsort(c.by_id, nm, sizeof *c.by_id, method_ref_cmp);
    c.n_by_id = (uint32_t)nm;
    c.mframe = kl_xmalloc((nm + 1) * sizeof *c.mframe);
    memset(c.mframe, 0xff, (nm + 1) * sizeof *c.mframe);
    android_slots(&c);
    event_times(&c);
    size_t ne = tr->events.len;
    c.ev_off = kl_xcalloc((size_t)c.n_slots + 2, sizeof *c.ev_off);
    c.ev_idx = kl_xmalloc((ne + 1) * sizeof *c.ev_idx);
    for (size_t i = 0; i < ne; i++)
        c.ev_off[c.slot[i] + 1]++;
    for (uint32_t s = 0; s < c.n_slots; s++)
        c.ev_off[s + 1] += c.ev_off[s];
    uint32_t *fill = kl_xmalloc(((size_t)c.n_slots + 1) * sizeof *fill);
    memcpy(fill, c.ev_off, ((size_t)c.n_slots + 1) * sizeof *fill);
    for (size_t i = 0; i < ne; i++)
        c.ev_idx[fill[c.slot[i]]++] = (uint32_t)i;
    free(fill);

    /* the main thread: the first named "main", else id 0 */
    uint64_t main_id = 0;
    for (size_t i = 0; i < tr->threads.len; i++)
        if (kl_str_eq_c(tr->threads.items[i].name, "main")) {
            main_id = tr->threads.items[i].id;
            break;
        }

    int rc = 0;
    for (uint32_t s = 0; s < c.n_slots && rc == 0; s++) {
        bool is_main = c.tids[s] == main_id;
        if (which == KL_CALLTREE_ACTIVE && !is_main)
            continue;
        uint32_t first = b->n_nodes;
        rc = build_android_thread(b, &c, s, p->kind == KL_KIND_ANDROID);
        if (rc == 0 && b->n_nodes > first) {
            struct kl_cthread *th = builder_thread(b);
            th->first_node = first;
            th->n_nodes = b->n_nodes - first;
            char num[24];
            int n = snprintf(num, sizeof num, "%" PRIu64, c.tids[s]);
            th->id = kl_str_make(kl_arena_strndup(b->a, num, (size_t)n), (size_t)n);
            th->name = KL_STR_NULL;
            for (size_t i = 0; i < tr->threads.len; i++)
                if (tr->threads.items[i].id == c.tids[s]) {
                    th->name = tr->threads.items[i].name;
                    break;
                }
            th->active = is_main;
        }
    }
    uint64_t duration = p->duration_ns;
    if (duration == 0)
        for (size_t i = 0; i < tr->events.len; i++)
            if (c.ts[i] > duration)
                duration = c.ts[i];
    free(c.by_id);
    free(c.mframe);
    free(c.slot);
    free(c.tids);
    free(c.ts);
    free(c.ev_off);
    free(c.ev_idx);
    if (rc < 0) {
        builder_free(b);
        return NULL;
    }
    return builder_finish(b, p->timestamp_ns, duration, true);
}

/* ------------------------------------------------------------------------------------ */
/* Entry points                                                                         */

struct kl_calltree *kl_calltree_build(struct kl_arena *a, const struct kl_profile *p,
                                      enum kl_calltree_threads which, struct kl_err *err)
{
    struct builder b;
    memset(&b, 0, sizeof b);
    b.a = a;
    b.err = err;
    switch (p->kind) {
    case KL_KIND_SAMPLE_V1:
    case KL_KIND_SAMPLE_V2:
        return build_samples(&b, p, &p->data, false, which);
    case KL_KIND_ANDROID:
        /* vroomrs skips long traces: they are mostly noise (and timeouts) for aggregation */
        if (p->duration_ns > KL_CALLTREE_ANDROID_MAX_NS)
            return builder_finish(&b, p->timestamp_ns, p->duration_ns, true);
        /* React Native: the JS profile's tree replaces the Java one */
        if (p->js_data.present)
            return build_samples(&b, p, &p->js_data, true, which);
        return build_android(&b, p, which);
    case KL_KIND_ANDROID_CHUNK:
        return build_android(&b, p, which);
    default:
        return builder_finish(&b, p->timestamp_ns, 0, false);
    }
}

uint64_t kl_calltree_self_ns(const struct kl_calltree *t, uint32_t i)
{
    const struct kl_cnode *n = &t->nodes[i];
    uint64_t dur = n->end_ns - n->start_ns, kids = 0;
    for (uint32_t j = i + 1; j < t->n_nodes && t->nodes[j].depth > n->depth; j++)
        if (t->nodes[j].depth == n->depth + 1)
            kids += t->nodes[j].end_ns - t->nodes[j].start_ns;
    return kids >= dur ? 0 : dur - kids;
}

/* calltree_codec.c - the compact binary form of call trees (layout in calltree.h)
 *
 * The form is canonical: strings are listed once each, in order of first reference
 * (frames' name, package, path, then threads' id, name), and every padding byte is zero.
 * The decoder insists on exactly that, so decoding and re-encoding a valid blob gives the
 * same bytes (the fuzz target checks it) and two equal trees always have equal blobs.
 * Every count is checked against the bytes that remain before anything is allocated.
 */
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "calltree/calltree.h"
#include "calltree/calltree_int.h"

#define MAGIC "KCT1"
#define HEADER_BYTES 40
#define FRAME_BYTES 24
#define NODE_BYTES 32
#define THREAD_BYTES 20
#define NO_STRING 0xffffffffu /* an absent string (ptr NULL), as opposed to "" */
#define FLAG_ANDROID 1u

/* ------------------------------------------------------------------------------------ */
/* String table shared by both directions: content -> index                             */

struct strtab {
    struct kl_str *strs;
    uint32_t n, cap;
    uint32_t *slots; /* index + 1 */
    uint32_t n_slots;
};

static void strtab_free(struct strtab *t)
{
    free(t->strs);
    free(t->slots);
}

/* Find s; OUT: *slot for an insertion. */
static bool strtab_find(const struct strtab *t, struct kl_str s, uint32_t *idx, uint32_t *slot)
{
    uint32_t j = (uint32_t)kl_fnv1a64(s.ptr, s.len) & (t->n_slots - 1);
    while (t->slots[j]) {
        if (kl_str_eq(t->strs[t->slots[j] - 1], s)) {
            *idx = t->slots[j] - 1;
            return true;
        }
        j = (j + 1) & (t->n_slots - 1);
    }
    *slot = j;
    return false;
}

static void strtab_init(struct strtab *t, uint32_t expect)
{
    memset(t, 0, sizeof *t);
    t->n_slots = 16;
    while (t->n_slots < 2 * (uint64_t)expect + 2)
        t->n_slots *= 2;
    t->slots = kl_xcalloc(t->n_slots, sizeof *t->slots);
    t->cap = expect + 1;
    t->strs = kl_xmalloc((size_t)t->cap * sizeof *t->strs);
}

/* Index of s, added when new (the table was sized for every reference). */
static uint32_t strtab_add(struct strtab *t, struct kl_str s)
{
    if (!kl_str_is_set(s))
        return NO_STRING;
    uint32_t idx, slot;
    if (strtab_find(t, s, &idx, &slot))
        return idx;
    t->strs[t->n] = s;
    t->slots[slot] = ++t->n;
    return t->n - 1;
}

/* ------------------------------------------------------------------------------------ */
/* Encoding                                                                             */

static void put_u32(struct kl_buf *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    kl_buf_append(b, p, 4);
}

static void put_u64(struct kl_buf *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

int kl_calltree_encode(const struct kl_calltree *t, struct kl_buf *out)
{
    struct strtab st;
    strtab_init(&st, 3 * t->n_frames + 2 * t->n_threads);
    uint32_t *fs = kl_xmalloc(((size_t)t->n_frames * 3 + 1) * sizeof *fs);
    uint32_t *ts = kl_xmalloc(((size_t)t->n_threads * 2 + 1) * sizeof *ts);
    for (uint32_t i = 0; i < t->n_frames; i++) {
        fs[3 * i] = strtab_add(&st, t->frames[i].name);
        fs[3 * i + 1] = strtab_add(&st, t->frames[i].package);
        fs[3 * i + 2] = strtab_add(&st, t->frames[i].path);
    }
    for (uint32_t i = 0; i < t->n_threads; i++) {
        ts[2 * i] = strtab_add(&st, t->threads[i].id);
        ts[2 * i + 1] = strtab_add(&st, t->threads[i].name);
    }

    kl_buf_append(out, MAGIC, 4);
    put_u32(out, t->android ? FLAG_ANDROID : 0);
    put_u64(out, (uint64_t)t->start_unix_ns);
    put_u64(out, t->duration_ns);
    put_u32(out, st.n);
    put_u32(out, t->n_frames);
    put_u32(out, t->n_nodes);
    put_u32(out, t->n_threads);
    static const char zeros[4] = {0};
    for (uint32_t i = 0; i < st.n; i++) {
        put_u32(out, (uint32_t)st.strs[i].len);
        kl_buf_append(out, st.strs[i].ptr, st.strs[i].len);
        kl_buf_append(out, zeros, (4 - st.strs[i].len % 4) % 4);
    }
    for (uint32_t i = 0; i < t->n_frames; i++) {
        const struct kl_cframe *f = &t->frames[i];
        put_u32(out, fs[3 * i]);
        put_u32(out, fs[3 * i + 1]);
        put_u32(out, fs[3 * i + 2]);
        put_u32(out, f->line);
        put_u32(out, f->flags);
        put_u32(out, f->fingerprint);
    }
    for (uint32_t i = 0; i < t->n_nodes; i++) {
        const struct kl_cnode *n = &t->nodes[i];
        put_u32(out, n->frame);
        put_u32(out, n->depth);
        put_u64(out, n->start_ns);
        put_u64(out, n->end_ns);
        put_u32(out, n->sample_count);
        put_u32(out, 0);
    }
    for (uint32_t i = 0; i < t->n_threads; i++) {
        const struct kl_cthread *th = &t->threads[i];
        put_u32(out, ts[2 * i]);
        put_u32(out, ts[2 * i + 1]);
        put_u32(out, th->first_node);
        put_u32(out, th->n_nodes);
        put_u32(out, th->active ? 1u : 0u);
    }
    free(fs);
    free(ts);
    strtab_free(&st);
    return kl_err_is_set(&out->err) ? -1 : 0;
}

/* ------------------------------------------------------------------------------------ */
/* Decoding                                                                             */

struct rd {
    const unsigned char *p, *end;
};

static uint32_t get_u32(struct rd *r)
{
    const unsigned char *p = r->p;
    r->p += 4;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(struct rd *r)
{
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}

static size_t left(const struct rd *r)
{
    return (size_t)(r->end - r->p);
}

/* A string reference in canonical order: an earlier string, or exactly the next unused
 * one. OUT: *s. */
static bool take_ref(const struct strtab *t, uint32_t ref, uint32_t *next, bool may_be_absent,
                     struct kl_str *s)
{
    if (ref == NO_STRING) {
        *s = KL_STR_NULL;
        return may_be_absent;
    }
    if (ref > *next || ref >= t->n)
        return false;
    if (ref == *next)
        (*next)++;
    *s = t->strs[ref];
    return true;
}

#define CORRUPT(what) (kl_err_set(err, KL_R_CALLTREE_CORRUPT, "corrupt call tree: %s", what), NULL)

struct kl_calltree *kl_calltree_decode(struct kl_arena *a, const char *bytes, size_t len,
                                       struct kl_err *err)
{
    struct rd r = {(const unsigned char *)bytes, (const unsigned char *)bytes + len};
    if (len < HEADER_BYTES)
        return CORRUPT("shorter than its header");
    if (memcmp(bytes, MAGIC, 4) != 0)
        return CORRUPT("bad magic");
    r.p += 4;
    uint32_t flags = get_u32(&r);
    if (flags & ~FLAG_ANDROID)
        return CORRUPT("unknown flags");
    int64_t start_unix = (int64_t)get_u64(&r);
    uint64_t duration = get_u64(&r);
    uint32_t n_strings = get_u32(&r), n_frames = get_u32(&r), n_nodes = get_u32(&r),
             n_threads = get_u32(&r);
    if (n_nodes > KL_CALLTREE_MAX_NODES)
        return CORRUPT("too many nodes");
    /* every count against what is left, before allocating */
    uint64_t fixed = (uint64_t)n_frames * FRAME_BYTES + (uint64_t)n_nodes * NODE_BYTES +
                     (uint64_t)n_threads * THREAD_BYTES;
    if ((uint64_t)n_strings * 4 + fixed > left(&r))
        return CORRUPT("counts exceed the blob");

    struct strtab st;
    strtab_init(&st, n_strings);
    const char *why = NULL;
    for (uint32_t i = 0; i < n_strings && !why; i++) {
        if (left(&r) < 4) {
            why = "truncated string table";
            break;
        }
        uint32_t n = get_u32(&r);
        size_t padded = (size_t)n + (4 - n % 4) % 4;
        if (padded > left(&r)) {
            why = "string runs past the end";
            break;
        }
        struct kl_str s = kl_str_make((const char *)r.p, n);
        for (size_t k = n; k < padded; k++)
            if (r.p[k] != 0)
                why = "non-zero padding";
        r.p += padded;
        uint32_t idx, slot;
        if (!why && strtab_find(&st, s, &idx, &slot))
            why = "duplicate string";
        if (!why) {
            st.strs[st.n] = s;
            st.slots[slot] = ++st.n;
        }
    }
    if (!why && left(&r) != fixed)
        why = left(&r) < fixed ? "truncated" : "trailing bytes";
    if (why) {
        strtab_free(&st);
        return CORRUPT(why);
    }

    struct kl_calltree *t = kl_arena_calloc(a, 1, sizeof *t);
    t->android = flags & FLAG_ANDROID;
    t->start_unix_ns = start_unix;
    t->duration_ns = duration;
    t->n_frames = n_frames;
    t->n_nodes = n_nodes;
    t->n_threads = n_threads;
    t->frames = kl_arena_alloc(a, (size_t)n_frames * sizeof *t->frames + 1);
    t->nodes = kl_arena_alloc(a, (size_t)n_nodes * sizeof *t->nodes + 1);
    t->threads = kl_arena_alloc(a, (size_t)n_threads * sizeof *t->threads + 1);

    uint32_t next = 0;
    for (uint32_t i = 0; i < n_frames && !why; i++) {
        struct kl_cframe *f = &t->frames[i];
        uint32_t name = get_u32(&r), pkg = get_u32(&r), path = get_u32(&r);
        if (!take_ref(&st, name, &next, false, &f->name) ||
            !take_ref(&st, pkg, &next, false, &f->package) ||
            !take_ref(&st, path, &next, true, &f->path))
            why = "bad string reference in a frame";
        f->line = get_u32(&r);
        f->flags = get_u32(&r);
        f->fingerprint = get_u32(&r);
        if (!why && (f->flags & ~(uint32_t)(KL_CFRAME_APPLICATION | KL_CFRAME_AGGREGATABLE)))
            why = "unknown frame flags";
        if (!why && f->fingerprint != kl__calltree_fingerprint(f->package, f->name))
            why = "frame fingerprint mismatch";
    }
    for (uint32_t i = 0; i < n_nodes && !why; i++) {
        struct kl_cnode *n = &t->nodes[i];
        n->frame = get_u32(&r);
        n->depth = get_u32(&r);
        n->start_ns = get_u64(&r);
        n->end_ns = get_u64(&r);
        n->sample_count = get_u32(&r);
        if (get_u32(&r) != 0)
            why = "non-zero node padding";
        else if (n->frame >= n_frames)
            why = "node frame out of range";
        else if (n->start_ns > n->end_ns)
            why = "node ends before it starts";
    }
    uint32_t covered = 0;
    for (uint32_t i = 0; i < n_threads && !why; i++) {
        struct kl_cthread *th = &t->threads[i];
        uint32_t id = get_u32(&r), name = get_u32(&r);
        if (!take_ref(&st, id, &next, false, &th->id) ||
            !take_ref(&st, name, &next, true, &th->name))
            why = "bad string reference in a thread";
        th->first_node = get_u32(&r);
        th->n_nodes = get_u32(&r);
        uint32_t tf = get_u32(&r);
        th->active = tf & 1;
        if (why)
            break;
        if (tf & ~1u)
            why = "unknown thread flags";
        else if (th->first_node != covered || th->n_nodes > n_nodes - covered)
            why = "thread node range";
        covered += th->n_nodes;
        for (uint32_t k = th->first_node; k < th->first_node + th->n_nodes && !why; k++) {
            uint32_t d = t->nodes[k].depth;
            if (k == th->first_node ? d != 0 : d > t->nodes[k - 1].depth + 1)
                why = "node depth";
        }
    }
    if (!why && covered != n_nodes)
        why = "nodes outside every thread";
    if (!why && next != st.n)
        why = "unreferenced string";
    strtab_free(&st);
    if (why)
        return CORRUPT(why);
    return t;
}

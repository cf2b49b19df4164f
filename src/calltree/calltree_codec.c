/* calltree_codec.c - the compact binary form of call trees (layout in calltree.h)
 *
 * KCT2: varints (LEB128) everywhere except the frames' fingerprints, and node times
 * predicted from the tree's shape, so a node of a sampled tree costs ~7 bytes instead of
 * KCT1's 32 (bench_read: 13.6 -> ~4 bytes per sample on disk with the strings, and a third
 * of the SQLite pages to walk per flamegraph query).
 *
 * The form is canonical: strings are listed once each, in order of first reference
 * (frames' name, package, path, then threads' id, name), every varint has its shortest
 * length, and nothing follows the last node. The decoder insists on exactly that, so
 * decoding and re-encoding a valid blob gives the same bytes (the fuzz target checks it)
 * and two equal trees always have equal blobs. Every count is checked against the bytes
 * that remain (each item has a minimum size) before anything is allocated.
 *
 * Fingerprints are stored, not re-derived: recomputing FNV-1a over every frame's package
 * and name was a third of decoding and decoding is on the flamegraph query's hot path. A
 * blob is written by kiln at ingest from the frame's own strings; a damaged fingerprint can
 * only misfile that frame's function metrics, never break an invariant of the tree.
 * KCT1 blobs (the fixed 32-byte-node form before it) are refused as corrupt: there was no
 * deployed data to carry over, and the query skips trees it cannot decode.
 */
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "calltree/calltree.h"

#define MAGIC "KCT2"
#define FLAG_ANDROID 1u
/* minimum encoded sizes, for the count checks before allocating */
#define MIN_STRING 1 /* length 0 */
#define MIN_FRAME 9  /* five 1-byte varints + the 4-byte fingerprint */
#define MIN_THREAD 4 /* four 1-byte varints */
#define MIN_NODE 5   /* five 1-byte varints */

/* ------------------------------------------------------------------------------------ */
/* String table shared by both directions: content -> index                             */

struct strtab {
    struct kl_str *strs;
    uint32_t n;
    uint32_t *slots; /* index + 1 */
    uint32_t n_slots;
};

static void strtab_free(struct strtab *t)
{
    free(t->strs);
    free(t->slots);
}

static void strtab_init(struct strtab *t, uint32_t expect)
{
    memset(t, 0, sizeof *t);
    t->n_slots = 16;
    while (t->n_slots < 2 * (uint64_t)expect + 2)
        t->n_slots *= 2;
    t->slots = kl_xcalloc(t->n_slots, sizeof *t->slots);
    t->strs = kl_xmalloc(((size_t)expect + 1) * sizeof *t->strs);
}

/* Add s unless present (the table was sized for every string). Returns its index; OUT:
 * *added. */
static uint32_t strtab_put(struct strtab *t, struct kl_str s, bool *added)
{
    uint32_t j = (uint32_t)kl_hash_bytes(s.ptr, s.len) & (t->n_slots - 1);
    while (t->slots[j]) {
        if (kl_str_eq(t->strs[t->slots[j] - 1], s)) {
            *added = false;
            return t->slots[j] - 1;
        }
        j = (j + 1) & (t->n_slots - 1);
    }
    t->strs[t->n] = s;
    t->slots[j] = ++t->n;
    *added = true;
    return t->n - 1;
}

/* ------------------------------------------------------------------------------------ */
/* Encoding                                                                             */

#define VARINT_MAX 10

static inline size_t put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

static inline uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* The writer: varints straight into out (room reserved per item). */
struct wr {
    struct kl_buf *b;
    bool failed;
};

static unsigned char *wr_room(struct wr *w, size_t n)
{
    if (w->failed || kl_buf_reserve(w->b, n) < 0) {
        w->failed = true;
        return NULL;
    }
    return (unsigned char *)w->b->ptr + w->b->len;
}

static void wr_varints(struct wr *w, const uint64_t *v, size_t n)
{
    unsigned char *p = wr_room(w, n * VARINT_MAX);
    if (!p)
        return;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += put_varint(p + len, v[i]);
    w->b->len += len;
}

static void wr_bytes(struct wr *w, const void *s, size_t n)
{
    if (!w->failed && kl_buf_append(w->b, s, n) < 0)
        w->failed = true;
}

/* String reference: the index, or for an optional string 0 (absent) / index + 1. */
static uint64_t ref(struct strtab *st, struct kl_str s, bool optional)
{
    bool added;
    if (optional && !kl_str_is_set(s))
        return 0;
    return strtab_put(st, s.ptr ? s : KL_STR(""), &added) + (optional ? 1u : 0u);
}

/* The shape the form can hold (the builders and the decoder only make such trees): threads
 * cover the nodes in order, depths start at 0 and rise by at most 1, frames in range,
 * start <= end. */
static const char *unencodable(const struct kl_calltree *t)
{
    if (t->n_nodes > KL_CALLTREE_MAX_NODES)
        return "too many nodes";
    uint32_t covered = 0;
    for (uint32_t ti = 0; ti < t->n_threads; ti++) {
        const struct kl_cthread *th = &t->threads[ti];
        if (th->first_node != covered || th->n_nodes > t->n_nodes - covered)
            return "thread node range";
        for (uint32_t k = 0; k < th->n_nodes; k++) {
            const struct kl_cnode *n = &t->nodes[covered + k];
            if (k == 0 ? n->depth != 0 : n->depth > n[-1].depth + 1)
                return "node depth";
            if (n->frame >= t->n_frames || n->start_ns > n->end_ns)
                return "node frame or times";
        }
        covered += th->n_nodes;
    }
    return covered == t->n_nodes ? NULL : "nodes outside every thread";
}

int kl_calltree_encode(const struct kl_calltree *t, struct kl_buf *out)
{
    const char *why = unencodable(t);
    if (why)
        return kl_err_set(&out->err, KL_R_CALLTREE_CORRUPT, "cannot encode call tree: %s", why);
    struct strtab st;
    strtab_init(&st, 3 * t->n_frames + 2 * t->n_threads);
    uint64_t *fr = kl_xmalloc(((size_t)t->n_frames * 3 + 1) * sizeof *fr);
    uint64_t *tr = kl_xmalloc(((size_t)t->n_threads * 2 + 1) * sizeof *tr);
    for (uint32_t i = 0; i < t->n_frames; i++) {
        fr[3 * i] = ref(&st, t->frames[i].name, false);
        fr[3 * i + 1] = ref(&st, t->frames[i].package, false);
        fr[3 * i + 2] = ref(&st, t->frames[i].path, true);
    }
    for (uint32_t i = 0; i < t->n_threads; i++) {
        tr[2 * i] = ref(&st, t->threads[i].id, false);
        tr[2 * i + 1] = ref(&st, t->threads[i].name, true);
    }

    struct wr w = {out, false};
    wr_bytes(&w, MAGIC, 4);
    uint64_t head[] = {t->android ? FLAG_ANDROID : 0,
                       zigzag(t->start_unix_ns),
                       t->duration_ns,
                       st.n,
                       t->n_frames,
                       t->n_nodes,
                       t->n_threads};
    wr_varints(&w, head, sizeof head / sizeof *head);
    for (uint32_t i = 0; i < st.n; i++) {
        uint64_t len = st.strs[i].len;
        wr_varints(&w, &len, 1);
        wr_bytes(&w, st.strs[i].ptr, st.strs[i].len);
    }
    for (uint32_t i = 0; i < t->n_frames; i++) {
        const struct kl_cframe *f = &t->frames[i];
        uint64_t v[] = {fr[3 * i], fr[3 * i + 1], fr[3 * i + 2], f->line, f->flags};
        wr_varints(&w, v, 5);
        unsigned char fp[4] = {(unsigned char)f->fingerprint, (unsigned char)(f->fingerprint >> 8),
                               (unsigned char)(f->fingerprint >> 16),
                               (unsigned char)(f->fingerprint >> 24)};
        wr_bytes(&w, fp, 4);
    }
    for (uint32_t i = 0; i < t->n_threads; i++) {
        const struct kl_cthread *th = &t->threads[i];
        uint64_t v[] = {tr[2 * i], tr[2 * i + 1], th->n_nodes, th->active ? 1u : 0u};
        wr_varints(&w, v, 4);
    }
    /* nodes, thread by thread: frame, up = previous depth + 1 - depth, start as a zigzag
     * delta from its prediction (a first child starts with its parent, a later node where
     * the previous node at its depth ended), duration, sample count */
    uint64_t *last_end = NULL; /* per depth: end of the last node seen there */
    size_t cap_depth = 0;
    for (uint32_t ti = 0; ti < t->n_threads && !w.failed; ti++) {
        const struct kl_cthread *th = &t->threads[ti];
        uint32_t prev_depth = 0;
        uint64_t prev_start = 0;
        for (uint32_t k = 0; k < th->n_nodes; k++) {
            const struct kl_cnode *n = &t->nodes[th->first_node + k];
            if (n->depth >= cap_depth) {
                cap_depth = (size_t)n->depth + 64;
                last_end = kl_xrealloc(last_end, cap_depth * sizeof *last_end);
            }
            uint64_t up = k == 0 ? 0 : (uint64_t)prev_depth + 1 - n->depth;
            uint64_t pred = k == 0                       ? 0
                            : n->depth == prev_depth + 1 ? prev_start
                                                         : last_end[n->depth];
            uint64_t v[] = {n->frame, up, zigzag((int64_t)(n->start_ns - pred)),
                            n->end_ns - n->start_ns, n->sample_count};
            wr_varints(&w, v, 5);
            last_end[n->depth] = n->end_ns;
            prev_depth = n->depth;
            prev_start = n->start_ns;
        }
    }
    free(last_end);
    free(fr);
    free(tr);
    strtab_free(&st);
    return w.failed || kl_err_is_set(&out->err) ? -1 : 0;
}

/* ------------------------------------------------------------------------------------ */
/* Decoding                                                                             */

struct rd {
    const unsigned char *p, *end;
    bool bad; /* truncated or non-canonical varint, or a value out of its range */
};

/* A canonical LEB128 varint of at most max; sets r->bad (and returns 0) otherwise. */
static inline uint64_t get_varint(struct rd *r, uint64_t max)
{
    const unsigned char *p = r->p;
    if (p < r->end && *p < 0x80) { /* the common one-byte case */
        r->p++;
        if (*p > max)
            r->bad = true;
        return *p;
    }
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p >= r->end)
            break;
        unsigned char c = *p++;
        if (shift == 63 && c > 1)
            break; /* more than 64 bits */
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            if (c == 0 && shift > 0)
                break; /* a longer encoding than needed */
            if (v > max)
                break;
            r->p = p;
            return v;
        }
    }
    r->bad = true;
    r->p = r->end;
    return 0;
}

static size_t left(const struct rd *r)
{
    return (size_t)(r->end - r->p);
}

/* A string reference in canonical order: an earlier string, or exactly the next unused
 * one. raw is the index (required) or 0 / index + 1 (optional). OUT: *s. */
static bool take_ref(const struct strtab *t, uint64_t raw, uint32_t *next, bool optional,
                     struct kl_str *s)
{
    if (optional) {
        if (raw == 0) {
            *s = KL_STR_NULL;
            return true;
        }
        raw--;
    }
    if (raw > *next || raw >= t->n)
        return false;
    if (raw == *next)
        (*next)++;
    *s = t->strs[raw];
    return true;
}

#define CORRUPT(what) (kl_err_set(err, KL_R_CALLTREE_CORRUPT, "corrupt call tree: %s", what), NULL)

struct kl_calltree *kl_calltree_decode(struct kl_arena *a, const char *bytes, size_t len,
                                       struct kl_err *err)
{
    struct rd r = {(const unsigned char *)bytes, (const unsigned char *)bytes + len, false};
    if (len < 4 || memcmp(bytes, MAGIC, 4) != 0)
        return CORRUPT(len >= 4 && memcmp(bytes, "KCT", 3) == 0 ? "unsupported version"
                                                                : "bad magic");
    r.p += 4;
    uint64_t flags = get_varint(&r, FLAG_ANDROID);
    int64_t start_unix = unzigzag(get_varint(&r, UINT64_MAX));
    uint64_t duration = get_varint(&r, UINT64_MAX);
    uint32_t n_strings = (uint32_t)get_varint(&r, UINT32_MAX);
    uint32_t n_frames = (uint32_t)get_varint(&r, UINT32_MAX);
    uint32_t n_nodes = (uint32_t)get_varint(&r, KL_CALLTREE_MAX_NODES);
    uint32_t n_threads = (uint32_t)get_varint(&r, UINT32_MAX);
    if (r.bad)
        return CORRUPT("bad header");
    /* every count against what is left, before allocating */
    if ((uint64_t)n_strings * MIN_STRING + (uint64_t)n_frames * MIN_FRAME +
            (uint64_t)n_threads * MIN_THREAD + (uint64_t)n_nodes * MIN_NODE >
        left(&r))
        return CORRUPT("counts exceed the blob");

    struct strtab st;
    strtab_init(&st, n_strings);
    const char *why = NULL;
    for (uint32_t i = 0; i < n_strings && !why; i++) {
        uint64_t n = get_varint(&r, UINT32_MAX);
        if (r.bad || n > left(&r)) { /* left() after the length's own bytes */
            why = "string runs past the end";
            break;
        }
        bool added;
        strtab_put(&st, kl_str_make((const char *)r.p, (size_t)n), &added);
        r.p += n;
        if (!added)
            why = "duplicate string";
    }
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
        uint64_t name = get_varint(&r, UINT32_MAX), pkg = get_varint(&r, UINT32_MAX),
                 path = get_varint(&r, UINT32_MAX);
        f->line = (uint32_t)get_varint(&r, UINT32_MAX);
        f->flags = (uint32_t)get_varint(&r, KL_CFRAME_APPLICATION | KL_CFRAME_AGGREGATABLE);
        if (r.bad || left(&r) < 4) {
            why = "bad frame";
            break;
        }
        f->fingerprint = (uint32_t)r.p[0] | (uint32_t)r.p[1] << 8 | (uint32_t)r.p[2] << 16 |
                         (uint32_t)r.p[3] << 24;
        r.p += 4;
        if (!take_ref(&st, name, &next, false, &f->name) ||
            !take_ref(&st, pkg, &next, false, &f->package) ||
            !take_ref(&st, path, &next, true, &f->path))
            why = "bad string reference in a frame";
    }
    uint32_t covered = 0;
    for (uint32_t i = 0; i < n_threads && !why; i++) {
        struct kl_cthread *th = &t->threads[i];
        uint64_t id = get_varint(&r, UINT32_MAX), name = get_varint(&r, UINT32_MAX);
        th->n_nodes = (uint32_t)get_varint(&r, n_nodes - covered);
        th->active = get_varint(&r, 1) != 0;
        th->first_node = covered;
        covered += th->n_nodes;
        if (r.bad)
            why = "bad thread";
        else if (!take_ref(&st, id, &next, false, &th->id) ||
                 !take_ref(&st, name, &next, true, &th->name))
            why = "bad string reference in a thread";
    }
    if (!why && covered != n_nodes)
        why = "nodes outside every thread";
    if (!why && next != st.n)
        why = "unreferenced string";
    strtab_free(&st);
    if (why)
        return CORRUPT(why);

    /* nodes: the inverse of the encoder's predictions; the per-depth ends live in the
     * nodes already decoded (spine[d] = index of the last node at depth d) */
    uint32_t *spine = NULL;
    size_t cap_spine = 0;
    for (uint32_t ti = 0; ti < n_threads && !why; ti++) {
        const struct kl_cthread *th = &t->threads[ti];
        struct kl_cnode *prev = NULL;
        for (uint32_t k = 0; k < th->n_nodes; k++) {
            uint32_t idx = th->first_node + k;
            struct kl_cnode *n = &t->nodes[idx];
            n->frame = (uint32_t)get_varint(&r, n_frames ? n_frames - 1 : 0);
            uint64_t up = get_varint(&r, prev ? (uint64_t)prev->depth + 1 : 0);
            uint64_t delta = get_varint(&r, UINT64_MAX);
            uint64_t dur = get_varint(&r, UINT64_MAX);
            n->sample_count = (uint32_t)get_varint(&r, UINT32_MAX);
            if (r.bad || !n_frames) {
                why = "bad node";
                break;
            }
            n->depth = prev ? prev->depth + 1 - (uint32_t)up : 0;
            uint64_t pred = !prev                         ? 0
                            : n->depth == prev->depth + 1 ? prev->start_ns
                                                          : t->nodes[spine[n->depth]].end_ns;
            n->start_ns = pred + (uint64_t)unzigzag(delta);
            n->end_ns = n->start_ns + dur;
            if (n->end_ns < n->start_ns) {
                why = "node ends past the end of time";
                break;
            }
            if (n->depth >= cap_spine) {
                cap_spine = (size_t)n->depth + 64;
                spine = kl_xrealloc(spine, cap_spine * sizeof *spine);
            }
            spine[n->depth] = idx;
            prev = n;
        }
    }
    free(spine);
    if (!why && r.p != r.end)
        why = "trailing bytes";
    if (why)
        return CORRUPT(why);
    return t;
}

/* flamegraph.c - merging call trees into one flamegraph; speedscope, collapsed and diff output
 *
 * The hot path is kl_flamegraph_add, two passes per thread of a tree:
 *   1. resolve_thread maps the tree's frames to global ids (pre-order, lazily) and finds the
 *      merged node of every tree node whose path already exists, one depth level at a time
 *      with prefetches. With ~700k merged nodes the (parent, frame) table and the node array
 *      are tens of MB, so every probe is a cache miss; the level order lets the misses of
 *      a level overlap instead of queueing one behind the other (perf on 10k profiles: 2/3
 *      of the merge was those two loads).
 *   2. add_thread walks the nodes in pre-order with a parent stack: creates the nodes on new
 *      paths (so ids keep pre-order creation order), adds counts, durations and self times,
 *      appends to the frame's duration array, attaches examples, records function metrics.
 * Everything else (frame infos, percentiles, samples, examples) is computed when writing.
 * SVG rendering lives in svg.c on the public accessors.
 */
#include "aggregate/flamegraph.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "json/json.h"

#define NONE UINT32_MAX

/* ---------------------------------------------------------------------------------- */
/* Model                                                                               */

struct gframe {
    struct kl_fg_frame f;
    uint64_t hash;
    uint64_t *durs; /* one per merged tree node of this frame (malloc) */
    size_t n_durs, cap_durs;
};

struct gnode {
    uint32_t parent, frame, depth;
    uint32_t ex_last, ex_n; /* last example attached, how many (the list is in fg->exlog) */
    uint64_t occ, samples, dur, self;
};

/* One example attached to one node. The log is in attach order, so each node's examples
 * are in order within it; writers index it by node (examples_index). A log instead of a
 * linked list per node: attaching appends (no cache miss on the list's tail) and merging
 * accumulators reads it sequentially. */
struct exref {
    uint32_t node, ex;
};

struct nslot {
    uint64_t key; /* parent << 32 | frame; UINT64_MAX empty */
    uint32_t node;
    uint32_t pad;
};

/* A node of the tree being added whose merged node does not exist yet: its parent is a
 * merged node id or PEND | the parent's pending index. */
struct pslot {
    uint64_t key; /* parent ref << 32 | frame; UINT64_MAX empty */
    uint32_t idx;
    uint32_t pad;
};

#define PEND 0x80000000u /* in hints: a pending index, not a node id */

struct gfn {
    uint32_t fp;
    bool in_app;
    struct kl_str name, package;
    uint64_t *selfs; /* malloc */
    size_t n_selfs, cap_selfs;
    uint64_t sum, count, maxval;
    uint32_t worst;
    uint32_t ex[KL_FG_MAX_FUNCTION_EXAMPLES];
    uint32_t n_ex;
};

struct fpslot {
    uint32_t fp;
    uint32_t idx1; /* index + 1; 0 empty */
};

/* per-unit (profile or chunk thread) function extraction */
struct lfn {
    uint32_t fp, gframe, slot, gidx;
    uint64_t sum, count;
};
struct lself {
    uint32_t lfn;
    uint64_t self;
};

struct sent {
    uint32_t gnode, lframe, depth;
    uint64_t dur, sc, child_dur, child_sc, ca, cs;
};

struct kl_flamegraph {
    struct kl_fg_options opt;
    struct kl_arena arena; /* frame and example strings */

    struct gframe *frames;
    uint32_t n_frames, cap_frames;
    uint32_t *fslots; /* frame ids; NONE empty */
    size_t fcap;

    struct gnode *nodes;
    uint32_t n_nodes, cap_nodes;
    struct nslot *nslots;
    size_t ncap; /* power of two */
    int nshift;

    struct exref *exlog;
    size_t n_exlog, cap_exlog;

    struct kl_fg_example *examples;
    uint32_t n_examples, cap_examples;

    struct gfn *fns;
    uint32_t n_fns, cap_fns;
    struct fpslot *fnslots;
    size_t fncap;

    /* scratch for _add */
    uint32_t *lmap;
    uint32_t *lflags, *lfp; /* per local frame, once mapped: its flags and fingerprint */
    size_t cap_lmap, cap_lflags, cap_lfp;
    struct sent *stk;
    size_t cap_stk;
    uint32_t *hint;   /* per node of the thread: its global node found by resolve_thread */
    uint32_t *lpar;   /* per node of the thread: local parent index, NONE for roots */
    uint32_t *lvl;    /* node indices bucketed by depth */
    uint32_t *lspine; /* per depth: the last node seen at that depth (pre-order) */
    uint32_t *loff;   /* per depth + 2: bucket offsets */
    uint64_t *lpos;   /* per bucketed node: its slot position */
    size_t cap_hint, cap_lpar, cap_lvl, cap_lspine, cap_loff, cap_lpos;
    /* nodes on paths new to the accumulator, per thread (see resolve_thread) */
    struct pslot *pslots; /* (parent ref, frame) -> pending index; key UINT64_MAX empty */
    size_t pcap;
    uint32_t *pend_id;   /* per pending index: its node id once created, NONE before */
    uint32_t *pend_slot; /* per pending index: its slot in pslots (to clear it) */
    uint32_t n_pend;
    size_t cap_pend_id, cap_pend_slot;
    uint32_t *ins; /* nodes created but not yet in the node map */
    size_t n_ins, cap_ins;
    struct lfn *lfns;
    size_t n_lfns, cap_lfns;
    struct lself *lselfs;
    size_t n_lselfs, cap_lselfs;
    struct fpslot *lslots;
    size_t lcap;
};

/* Memory for the arrays that grow with the data (nodes, per-frame durations, per-function
 * self times, the example log; tens of MB each over 10k profiles, ~400 MB per query).
 * perf (page-faults event, DWARF call graphs) showed most of the query's page faults in
 * realloc's copies: glibc serves these sizes from the heap once its mmap threshold has
 * risen, so every doubling copies into fresh pages. Past BIG_MIN bytes these arrays live
 * in their own mappings and grow with mremap (page tables move, nothing is copied), and
 * ask for transparent huge pages (this kernel's THP mode is "madvise"): one fault per 2 MB
 * and fewer TLB misses for the random probes. A header before the data says which kind of
 * block it is; free them with big_free only. */
#define BIG_MIN (4u << 20)

struct bighdr {
    size_t size;    /* bytes of data asked for */
    size_t map_len; /* length of the mapping, 0 for a heap block */
};

static void big_advise(void *p, size_t n)
{
    uintptr_t lo = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t hi = ((uintptr_t)p + n) & ~(uintptr_t)4095;
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* advice only: failure is fine */
}

static void *big_realloc(void *p, size_t n)
{
    struct bighdr *h = p ? (struct bighdr *)p - 1 : NULL;
    size_t total = n + sizeof *h;
    if (total < BIG_MIN && (!h || !h->map_len)) {
        h = kl_xrealloc(h, total);
        h->size = n;
        h->map_len = 0;
        return h + 1;
    }
    size_t len = (total + 4095) & ~(size_t)4095;
    void *m;
    if (h && h->map_len) {
        m = mremap(h, h->map_len, len, MREMAP_MAYMOVE);
    } else {
        m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED && h) {
            memcpy(m, h, sizeof *h + h->size);
            free(h);
        }
    }
    if (m == MAP_FAILED) { /* out of memory aborts, as kl_xmalloc does (STYLE B4) */
        fprintf(stderr, "kiln: out of memory mapping %zu bytes\n", len);
        abort();
    }
    big_advise(m, len);
    h = m;
    h->size = n;
    h->map_len = len;
    return h + 1;
}

static void big_free(void *p)
{
    if (!p)
        return;
    struct bighdr *h = (struct bighdr *)p - 1;
    if (h->map_len)
        munmap(h, h->map_len);
    else
        free(h);
}

/* A fresh block for the node map (replaced whole on rehash, never grown in place). */
static void *map_alloc(size_t n)
{
    void *p = kl_xmalloc(n);
    if (n >= BIG_MIN)
        big_advise(p, n);
    return p;
}

#define GROW(ptr, n, cap, need)                                                                    \
    do {                                                                                           \
        if ((need) > (cap)) {                                                                      \
            size_t nc_ = (cap) ? (size_t)(cap)*2 : 16;                                             \
            while (nc_ < (size_t)(need))                                                           \
                nc_ *= 2;                                                                          \
            (ptr) = kl_xrealloc((ptr), nc_ * sizeof *(ptr));                                       \
            (cap) = nc_;                                                                           \
        }                                                                                          \
    } while (0)

/* GROW for the big arrays (big_realloc; free with big_free). */
#define GROW_BIG(ptr, n, cap, need)                                                                \
    do {                                                                                           \
        if ((need) > (cap)) {                                                                      \
            size_t nc_ = (cap) ? (size_t)(cap)*2 : 16;                                             \
            while (nc_ < (size_t)(need))                                                           \
                nc_ *= 2;                                                                          \
            (ptr) = big_realloc((ptr), nc_ * sizeof *(ptr));                                       \
            (cap) = nc_;                                                                           \
        }                                                                                          \
    } while (0)

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static struct kl_str dup_str(struct kl_flamegraph *fg, struct kl_str s)
{
    if (!s.ptr)
        return KL_STR_NULL;
    return kl_str_make(kl_arena_strndup(&fg->arena, s.ptr, s.len), s.len);
}

static struct kl_str nz(struct kl_str s)
{
    return s.ptr ? s : KL_STR("");
}

struct kl_flamegraph *kl_flamegraph_new(const struct kl_fg_options *opt)
{
    struct kl_flamegraph *fg = kl_xcalloc(1, sizeof *fg);
    if (opt)
        fg->opt = *opt;
    if (!fg->opt.functions_per_profile)
        fg->opt.functions_per_profile = KL_FG_DEFAULT_FUNCTIONS;
    kl_arena_init(&fg->arena);
    fg->fcap = 1024;
    fg->fslots = kl_xmalloc(fg->fcap * sizeof *fg->fslots);
    memset(fg->fslots, 0xff, fg->fcap * sizeof *fg->fslots);
    fg->ncap = 4096;
    fg->nshift = 64 - 12;
    fg->nslots = kl_xmalloc(fg->ncap * sizeof *fg->nslots);
    memset(fg->nslots, 0xff, fg->ncap * sizeof *fg->nslots);
    fg->fncap = 256;
    fg->fnslots = kl_xcalloc(fg->fncap, sizeof *fg->fnslots);
    fg->lcap = 256;
    fg->lslots = kl_xcalloc(fg->lcap, sizeof *fg->lslots);
    return fg;
}

struct kl_flamegraph *kl_flamegraph_new_like(const struct kl_flamegraph *fg)
{
    return kl_flamegraph_new(&fg->opt);
}

void kl_flamegraph_free(struct kl_flamegraph *fg)
{
    if (!fg)
        return;
    for (uint32_t i = 0; i < fg->n_frames; i++)
        big_free(fg->frames[i].durs);
    for (uint32_t i = 0; i < fg->n_fns; i++)
        big_free(fg->fns[i].selfs);
    free(fg->frames);
    free(fg->fslots);
    big_free(fg->nodes);
    free(fg->nslots);
    big_free(fg->exlog);
    free(fg->examples);
    free(fg->fns);
    free(fg->fnslots);
    free(fg->lmap);
    free(fg->lflags);
    free(fg->lfp);
    free(fg->pslots);
    free(fg->pend_id);
    free(fg->pend_slot);
    free(fg->ins);
    free(fg->stk);
    free(fg->hint);
    free(fg->lpar);
    free(fg->lvl);
    free(fg->lspine);
    free(fg->loff);
    free(fg->lpos);
    free(fg->lfns);
    free(fg->lselfs);
    free(fg->lslots);
    kl_arena_release(&fg->arena);
    free(fg);
}

/* ---------------------------------------------------------------------------------- */
/* Frames: (name, package) -> id                                                        */

static uint64_t frame_hash(struct kl_str name, struct kl_str package)
{
    uint64_t h = kl_hash_bytes(name.ptr ? name.ptr : "", name.len);
    return mix64(h ^ (kl_hash_bytes(package.ptr ? package.ptr : "", package.len) + 0x9e37U));
}

static void frames_rehash(struct kl_flamegraph *fg)
{
    size_t cap = fg->fcap * 2;
    uint32_t *s = kl_xmalloc(cap * sizeof *s);
    memset(s, 0xff, cap * sizeof *s);
    for (uint32_t i = 0; i < fg->n_frames; i++) {
        size_t j = fg->frames[i].hash & (cap - 1);
        while (s[j] != NONE)
            j = (j + 1) & (cap - 1);
        s[j] = i;
    }
    free(fg->fslots);
    fg->fslots = s;
    fg->fcap = cap;
}

/* The global id of frame f (copied in when new). */
static uint32_t frame_get(struct kl_flamegraph *fg, const struct kl_fg_frame *f, uint64_t h)
{
    size_t mask = fg->fcap - 1, j = h & mask;
    uint32_t id;
    while ((id = fg->fslots[j]) != NONE) {
        const struct gframe *g = &fg->frames[id];
        if (g->hash == h && kl_str_eq(g->f.name, nz(f->name)) &&
            kl_str_eq(g->f.package, nz(f->package)))
            return id;
        j = (j + 1) & mask;
    }
    GROW(fg->frames, fg->n_frames, fg->cap_frames, (size_t)fg->n_frames + 1);
    id = fg->n_frames++;
    struct gframe *g = &fg->frames[id];
    memset(g, 0, sizeof *g);
    g->f.name = dup_str(fg, nz(f->name));
    g->f.package = dup_str(fg, nz(f->package));
    g->f.path = dup_str(fg, nz(f->path));
    g->f.line = f->line;
    g->f.flags = f->flags;
    g->f.fingerprint = f->fingerprint;
    g->hash = h;
    fg->fslots[j] = id;
    if ((size_t)fg->n_frames * 2 > fg->fcap)
        frames_rehash(fg);
    return id;
}

static inline void frame_push_dur(struct gframe *g, uint64_t d)
{
    if (g->n_durs == g->cap_durs) {
        g->cap_durs = g->cap_durs ? g->cap_durs * 2 : 64;
        g->durs = big_realloc(g->durs, g->cap_durs * sizeof *g->durs);
    }
    g->durs[g->n_durs++] = d;
}

/* ---------------------------------------------------------------------------------- */
/* Nodes: (parent, frame) -> id                                                         */

static inline size_t nslot_pos(const struct kl_flamegraph *fg, uint64_t key)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> fg->nshift);
}

#define INSERT_BATCH 16 /* slots prefetched ahead when inserting many nodes */

/* Put nodes ids[0..n) (or, with ids NULL, nodes first..first+n) into the node map, which
 * has room. The slots of a batch are prefetched before any is written, so their misses
 * overlap. */
static void nodes_insert(struct kl_flamegraph *fg, const uint32_t *ids, uint32_t first, size_t n)
{
    size_t mask = fg->ncap - 1, pos[INSERT_BATCH];
    for (size_t b = 0; b < n; b += INSERT_BATCH) {
        size_t m = n - b < INSERT_BATCH ? n - b : INSERT_BATCH;
        for (size_t k = 0; k < m; k++) {
            const struct gnode *g = &fg->nodes[ids ? ids[b + k] : first + b + k];
            pos[k] = nslot_pos(fg, (uint64_t)g->parent << 32 | g->frame);
            __builtin_prefetch(&fg->nslots[pos[k]], 1);
        }
        for (size_t k = 0; k < m; k++) {
            uint32_t id = ids ? ids[b + k] : first + (uint32_t)(b + k);
            const struct gnode *g = &fg->nodes[id];
            size_t j = pos[k];
            while (fg->nslots[j].key != UINT64_MAX)
                j = (j + 1) & mask;
            fg->nslots[j].key = (uint64_t)g->parent << 32 | g->frame;
            fg->nslots[j].node = id;
        }
    }
}

/* Grow the node map to hold every node at most half full, re-inserting all of them. */
static void nodes_rehash(struct kl_flamegraph *fg)
{
    size_t cap = fg->ncap;
    while ((size_t)fg->n_nodes * 2 > cap) {
        cap *= 2;
        fg->nshift--;
    }
    free(fg->nslots);
    fg->nslots = map_alloc(cap * sizeof *fg->nslots);
    memset(fg->nslots, 0xff, cap * sizeof *fg->nslots);
    fg->ncap = cap;
    nodes_insert(fg, NULL, 0, fg->n_nodes);
}

/* Append a node without putting it into the map (kl_flamegraph_add batches that: see
 * flush_inserts); NONE past KL_FG_MAX_NODES. */
static uint32_t node_new(struct kl_flamegraph *fg, uint32_t parent, uint32_t frame, uint32_t depth)
{
    if (fg->n_nodes >= KL_FG_MAX_NODES)
        return NONE;
    GROW_BIG(fg->nodes, fg->n_nodes, fg->cap_nodes, (size_t)fg->n_nodes + 1);
    uint32_t id = fg->n_nodes++;
    struct gnode *n = &fg->nodes[id];
    memset(n, 0, sizeof *n);
    n->parent = parent;
    n->frame = frame;
    n->depth = depth;
    n->ex_last = NONE;
    GROW(fg->ins, fg->n_ins, fg->cap_ins, fg->n_ins + 1);
    fg->ins[fg->n_ins++] = id;
    return id;
}

/* Put the nodes node_new appended into the map. */
static void flush_inserts(struct kl_flamegraph *fg)
{
    if (!fg->n_ins)
        return;
    if ((size_t)fg->n_nodes * 2 > fg->ncap)
        nodes_rehash(fg); /* inserts every node, these too */
    else
        nodes_insert(fg, fg->ins, 0, fg->n_ins);
    fg->n_ins = 0;
}

/* The node for (parent, frame), created when absent; NONE past KL_FG_MAX_NODES. */
static inline uint32_t node_get(struct kl_flamegraph *fg, uint32_t parent, uint32_t frame,
                                uint32_t depth)
{
    uint64_t key = (uint64_t)parent << 32 | frame;
    size_t mask = fg->ncap - 1, j = nslot_pos(fg, key);
    for (;;) {
        uint64_t k = fg->nslots[j].key;
        if (k == key)
            return fg->nslots[j].node;
        if (k == UINT64_MAX)
            break;
        j = (j + 1) & mask;
    }
    if (fg->n_nodes >= KL_FG_MAX_NODES)
        return NONE;
    GROW_BIG(fg->nodes, fg->n_nodes, fg->cap_nodes, (size_t)fg->n_nodes + 1);
    uint32_t id = fg->n_nodes++;
    struct gnode *n = &fg->nodes[id];
    memset(n, 0, sizeof *n);
    n->parent = parent;
    n->frame = frame;
    n->depth = depth;
    n->ex_last = NONE;
    fg->nslots[j].key = key;
    fg->nslots[j].node = id;
    if ((size_t)fg->n_nodes * 2 > fg->ncap)
        nodes_rehash(fg);
    return id;
}

static void node_attach_example(struct kl_flamegraph *fg, struct gnode *n, uint32_t ex)
{
    if (n->ex_n && n->ex_last == ex)
        return;
    if (fg->opt.max_examples_per_node && n->ex_n >= fg->opt.max_examples_per_node)
        return;
    GROW_BIG(fg->exlog, fg->n_exlog, fg->cap_exlog, fg->n_exlog + 1);
    fg->exlog[fg->n_exlog++] = (struct exref){(uint32_t)(n - fg->nodes), ex};
    n->ex_last = ex;
    n->ex_n++;
}

/* The examples of each node, in attach order: node i's are ex[off[i]] .. ex[off[i + 1]].
 * OUT: *off (n_nodes + 1 entries), *ex (n_exlog), malloc'd; the caller frees both. */
static void examples_index(const struct kl_flamegraph *fg, uint32_t **off, uint32_t **ex)
{
    uint32_t *o = kl_xcalloc((size_t)fg->n_nodes + 2, sizeof *o);
    uint32_t *e = kl_xmalloc((fg->n_exlog + 1) * sizeof *e);
    for (size_t i = 0; i < fg->n_exlog; i++)
        o[fg->exlog[i].node + 2]++;
    for (uint32_t i = 0; i < fg->n_nodes; i++)
        o[i + 2] += o[i + 1];
    /* o[i + 1] is now the start of node i; filling advances it to node i's end */
    for (size_t i = 0; i < fg->n_exlog; i++)
        e[o[fg->exlog[i].node + 1]++] = fg->exlog[i].ex;
    *off = o;
    *ex = e;
}

/* ---------------------------------------------------------------------------------- */
/* Examples and function metrics                                                        */

static uint32_t example_add(struct kl_flamegraph *fg, const struct kl_fg_example *e,
                            struct kl_str thread_id)
{
    if (fg->n_examples >= KL_FG_MAX_EXAMPLES)
        return NONE;
    GROW(fg->examples, fg->n_examples, fg->cap_examples, (size_t)fg->n_examples + 1);
    struct kl_fg_example *x = &fg->examples[fg->n_examples];
    x->project_id = e->project_id;
    x->profile_id = dup_str(fg, e->profile_id);
    x->profiler_id = dup_str(fg, e->profiler_id);
    x->chunk_id = dup_str(fg, e->chunk_id);
    x->transaction_id = dup_str(fg, e->transaction_id);
    x->thread_id = dup_str(fg, thread_id.ptr ? thread_id : e->thread_id);
    x->start_ns = e->start_ns;
    x->end_ns = e->end_ns;
    return fg->n_examples++;
}

static struct gfn *fn_get(struct kl_flamegraph *fg, uint32_t fp, bool *created)
{
    size_t mask = fg->fncap - 1, j = mix64(fp) & mask;
    while (fg->fnslots[j].idx1) {
        if (fg->fnslots[j].fp == fp) {
            *created = false;
            return &fg->fns[fg->fnslots[j].idx1 - 1];
        }
        j = (j + 1) & mask;
    }
    GROW(fg->fns, fg->n_fns, fg->cap_fns, (size_t)fg->n_fns + 1);
    struct gfn *f = &fg->fns[fg->n_fns++];
    memset(f, 0, sizeof *f);
    f->fp = fp;
    f->worst = NONE;
    fg->fnslots[j].fp = fp;
    fg->fnslots[j].idx1 = fg->n_fns;
    if ((size_t)fg->n_fns * 2 > fg->fncap) {
        size_t cap = fg->fncap * 2;
        struct fpslot *s = kl_xcalloc(cap, sizeof *s);
        for (uint32_t i = 0; i < fg->n_fns; i++) {
            size_t k = mix64(fg->fns[i].fp) & (cap - 1);
            while (s[k].idx1)
                k = (k + 1) & (cap - 1);
            s[k].fp = fg->fns[i].fp;
            s[k].idx1 = i + 1;
        }
        free(fg->fnslots);
        fg->fnslots = s;
        fg->fncap = cap;
    }
    *created = true;
    return f;
}

static void fn_push_self(struct gfn *f, uint64_t v)
{
    if (f->n_selfs == f->cap_selfs) {
        f->cap_selfs = f->cap_selfs ? f->cap_selfs * 2 : 16;
        f->selfs = big_realloc(f->selfs, f->cap_selfs * sizeof *f->selfs);
    }
    f->selfs[f->n_selfs++] = v;
}

static void unit_record(struct kl_flamegraph *fg, uint32_t fp, uint32_t gframe, uint64_t self,
                        uint64_t sc)
{
    size_t mask = fg->lcap - 1, j = mix64(fp) & mask;
    uint32_t idx = NONE;
    while (fg->lslots[j].idx1) {
        if (fg->lslots[j].fp == fp) {
            idx = fg->lslots[j].idx1 - 1;
            break;
        }
        j = (j + 1) & mask;
    }
    if (idx == NONE) {
        if ((fg->n_lfns + 1) * 2 > fg->lcap) {
            /* grow and re-insert the unit's functions */
            size_t cap = fg->lcap * 2;
            free(fg->lslots);
            fg->lslots = kl_xcalloc(cap, sizeof *fg->lslots);
            fg->lcap = cap;
            for (size_t i = 0; i < fg->n_lfns; i++) {
                size_t k = mix64(fg->lfns[i].fp) & (cap - 1);
                while (fg->lslots[k].idx1)
                    k = (k + 1) & (cap - 1);
                fg->lslots[k].fp = fg->lfns[i].fp;
                fg->lslots[k].idx1 = (uint32_t)i + 1;
                fg->lfns[i].slot = (uint32_t)k;
            }
            mask = cap - 1;
            j = mix64(fp) & mask;
            while (fg->lslots[j].idx1)
                j = (j + 1) & mask;
        }
        GROW(fg->lfns, fg->n_lfns, fg->cap_lfns, fg->n_lfns + 1);
        idx = (uint32_t)fg->n_lfns++;
        fg->lfns[idx] = (struct lfn){fp, gframe, (uint32_t)j, NONE, 0, 0};
        fg->lslots[j].fp = fp;
        fg->lslots[j].idx1 = idx + 1;
    }
    fg->lfns[idx].sum += self;
    fg->lfns[idx].count += sc;
    GROW(fg->lselfs, fg->n_lselfs, fg->cap_lselfs, fg->n_lselfs + 1);
    fg->lselfs[fg->n_lselfs++] = (struct lself){idx, self};
}

struct cand {
    uint64_t sum;
    uint32_t fp, idx;
};

/* x ranks before y: larger self time first, then smaller fingerprint (a total order: a
 * unit has one candidate per fingerprint). */
static inline bool cand_before(const struct cand *x, const struct cand *y)
{
    return x->sum != y->sum ? x->sum > y->sum : x->fp < y->fp;
}

/* Move the k best candidates of v[0..n) to v[0..k), in no particular order (quickselect;
 * which k are kept is all that matters: each goes into its own function's metrics). */
static void cand_select(struct cand *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1 && k > lo && k < hi) {
        struct cand pivot = v[lo + (hi - lo - 1) / 2], t; /* lower median: j < hi - 1 */
        size_t i = lo, j = hi - 1;
        for (;;) {
            while (cand_before(&v[i], &pivot))
                i++;
            while (cand_before(&pivot, &v[j]))
                j--;
            if (i >= j)
                break;
            t = v[i];
            v[i] = v[j];
            v[j] = t;
            i++;
            j--;
        }
        /* [lo, j] rank no later than the pivot, [j + 1, hi) no earlier */
        if (k <= j)
            hi = j + 1;
        else
            lo = j + 1;
    }
}

/* vroom: per profile, drop functions seen in <= 1 sample and system functions, keep the
 * top functions_per_profile by self time, then merge them by fingerprint. */
static void unit_flush(struct kl_flamegraph *fg, uint32_t ex)
{
    if (!fg->n_lfns)
        return;
    struct cand *cand = kl_xmalloc(fg->n_lfns * sizeof *cand);
    uint32_t nc = 0;
    for (size_t i = 0; i < fg->n_lfns; i++) {
        const struct lfn *l = &fg->lfns[i];
        if (l->count > 1 && (fg->frames[l->gframe].f.flags & KL_CFRAME_APPLICATION))
            cand[nc++] = (struct cand){l->sum, l->fp, (uint32_t)i};
    }
    if (nc > fg->opt.functions_per_profile) {
        cand_select(cand, nc, fg->opt.functions_per_profile);
        nc = fg->opt.functions_per_profile;
    }
    for (uint32_t i = 0; i < nc; i++) {
        struct lfn *l = &fg->lfns[cand[i].idx];
        bool created;
        struct gfn *f = fn_get(fg, l->fp, &created);
        l->gidx = (uint32_t)(f - fg->fns);
        if (created) {
            const struct gframe *g = &fg->frames[l->gframe];
            f->name = g->f.name;
            f->package = g->f.package;
            f->in_app = true;
            f->maxval = l->sum;
            f->worst = ex;
            if (ex != NONE)
                f->ex[f->n_ex++] = ex;
        } else {
            if (l->sum > f->maxval) {
                f->maxval = l->sum;
                f->worst = ex;
            }
            if (ex != NONE && f->n_ex < KL_FG_MAX_FUNCTION_EXAMPLES)
                f->ex[f->n_ex++] = ex;
        }
        f->sum += l->sum;
        f->count += l->count;
    }
    for (size_t i = 0; i < fg->n_lselfs; i++) {
        const struct lfn *l = &fg->lfns[fg->lselfs[i].lfn];
        if (l->gidx != NONE)
            fn_push_self(&fg->fns[l->gidx], fg->lselfs[i].self);
    }
    for (size_t i = 0; i < fg->n_lfns; i++)
        fg->lslots[fg->lfns[i].slot].idx1 = 0;
    fg->n_lfns = 0;
    fg->n_lselfs = 0;
    free(cand);
}

/* ---------------------------------------------------------------------------------- */
/* Adding trees                                                                         */

/* Close the top stack entry: self time, example, function metrics (§6.4). */
static inline void close_top(struct kl_flamegraph *fg, size_t sp, uint32_t ex)
{
    struct sent *e = &fg->stk[sp - 1];
    struct gnode *n = &fg->nodes[e->gnode];
    n->self += e->dur > e->child_dur ? e->dur - e->child_dur : 0;
    if (ex != NONE && e->sc > e->child_sc)
        node_attach_example(fg, n, ex);
    if (!fg->opt.metrics)
        return;
    uint64_t app = e->ca < e->dur ? e->ca : e->dur;
    uint32_t flags = fg->lflags[e->lframe];
    if (e->depth >= 1 && (flags & KL_CFRAME_AGGREGATABLE)) {
        uint64_t self;
        if (flags & KL_CFRAME_APPLICATION) {
            self = e->dur > e->ca ? e->dur - e->ca : 0;
            app += self;
        } else {
            self = e->dur > e->ca + e->cs ? e->dur - e->ca - e->cs : 0;
        }
        if (self > 0)
            unit_record(fg, fg->lfp[e->lframe], n->frame, self, e->sc);
    }
    if (sp >= 2) {
        fg->stk[sp - 2].ca += app;
        fg->stk[sp - 2].cs += e->dur - app;
    }
}

static uint32_t map_frame(struct kl_flamegraph *fg, const struct kl_calltree *t, uint32_t lf)
{
    const struct kl_cframe *c = &t->frames[lf];
    struct kl_fg_frame f = {c->name, c->package, c->path, c->line, c->flags, c->fingerprint};
    fg->lflags[lf] = c->flags;
    fg->lfp[lf] = c->fingerprint;
    return fg->lmap[lf] = frame_get(fg, &f, frame_hash(nz(c->name), nz(c->package)));
}

/* The pending index of key (parent ref << 32 | frame), a new one when absent. */
static uint32_t pending_get(struct kl_flamegraph *fg, uint64_t key)
{
    if ((size_t)(fg->n_pend + 1) * 2 > fg->pcap) {
        size_t cap = fg->pcap ? fg->pcap * 2 : 1024;
        struct pslot *ps = kl_xmalloc(cap * sizeof *ps);
        memset(ps, 0xff, cap * sizeof *ps);
        for (uint32_t i = 0; i < fg->n_pend; i++) {
            const struct pslot *o = &fg->pslots[fg->pend_slot[i]];
            size_t j = (size_t)mix64(o->key) & (cap - 1);
            while (ps[j].key != UINT64_MAX)
                j = (j + 1) & (cap - 1);
            ps[j] = *o;
            fg->pend_slot[i] = (uint32_t)j;
        }
        free(fg->pslots);
        fg->pslots = ps;
        fg->pcap = cap;
    }
    size_t mask = fg->pcap - 1, j = (size_t)mix64(key) & mask;
    for (; fg->pslots[j].key != UINT64_MAX; j = (j + 1) & mask)
        if (fg->pslots[j].key == key)
            return fg->pslots[j].idx;
    GROW(fg->pend_id, fg->n_pend, fg->cap_pend_id, (size_t)fg->n_pend + 1);
    GROW(fg->pend_slot, fg->n_pend, fg->cap_pend_slot, (size_t)fg->n_pend + 1);
    uint32_t idx = fg->n_pend++;
    fg->pslots[j].key = key;
    fg->pslots[j].idx = idx;
    fg->pend_id[idx] = NONE;
    fg->pend_slot[idx] = (uint32_t)j;
    return idx;
}

/* Forget the thread's pending nodes (clears only the slots used). */
static void pending_reset(struct kl_flamegraph *fg)
{
    for (uint32_t i = 0; i < fg->n_pend; i++)
        fg->pslots[fg->pend_slot[i]].key = UINT64_MAX;
    fg->n_pend = 0;
}

/* The first pass over a thread (see the top comment): the merged node of every tree node,
 * found one depth level at a time. The probes of one level are independent (their parents
 * are all resolved), so they are issued together with prefetches: with hundreds of
 * thousands of merged nodes each probe misses the cache, and overlapping the misses is what
 * makes the merge fast. A node whose path is new gets PEND | a pending index, shared by
 * every tree node of the thread on that same new path (pending_get), and its children skip
 * the probe (they are new too); add_nodes creates pending nodes in pre-order, so node and
 * frame ids come out as from one pre-order pass, and flush_inserts puts them into the map
 * in prefetched batches. Frames are mapped here in pre-order, up to the first node
 * add_nodes will reject, exactly as add_nodes would map them. Not used for slices (their
 * skipped subtrees must not map frames) nor into an empty accumulator. */
static void resolve_thread(struct kl_flamegraph *fg, const struct kl_calltree *t,
                           const struct kl_cthread *th)
{
    uint32_t lo = th->first_node, n = th->n_nodes, m = 0, maxd = 0, prevd = 0;
    GROW(fg->hint, 0, fg->cap_hint, (size_t)n + 1);
    if (n >= PEND - 1) { /* pending indexes would not fit: add_thread does it all */
        for (uint32_t i = 0; i < n; i++)
            fg->hint[i] = NONE;
        return;
    }
    GROW(fg->lpar, 0, fg->cap_lpar, (size_t)n + 1);
    GROW(fg->lvl, 0, fg->cap_lvl, (size_t)n + 1);
    GROW(fg->lpos, 0, fg->cap_lpos, (size_t)n + 1);
    uint32_t *hint = fg->hint, *par = fg->lpar;
    for (; m < n; m++) {
        const struct kl_cnode *cn = &t->nodes[lo + m];
        uint32_t d = cn->depth;
        if ((m == 0 ? d != 0 : d > prevd + 1) || cn->frame >= t->n_frames ||
            cn->start_ns > cn->end_ns)
            break;
        prevd = d;
        if (d >= fg->cap_lspine)
            GROW(fg->lspine, 0, fg->cap_lspine, (size_t)d + 1);
        fg->lspine[d] = m;
        par[m] = d ? fg->lspine[d - 1] : NONE;
        if (d > maxd)
            maxd = d;
        if (fg->lmap[cn->frame] == NONE)
            map_frame(fg, t, cn->frame);
    }
    for (uint32_t i = m; i < n; i++)
        hint[i] = NONE;
    if (!m)
        return;
    GROW(fg->loff, 0, fg->cap_loff, (size_t)maxd + 2);
    uint32_t *off = fg->loff, *lvl = fg->lvl;
    memset(off, 0, ((size_t)maxd + 2) * sizeof *off);
    for (uint32_t i = 0; i < m; i++)
        off[t->nodes[lo + i].depth + 1]++;
    for (uint32_t d = 0; d <= maxd; d++)
        off[d + 1] += off[d];
    for (uint32_t i = 0; i < m; i++)
        lvl[off[t->nodes[lo + i].depth]++] = i;
    /* off[d] is now the end of level d (= the start of level d + 1) */
    const struct kl_cnode *nodes = t->nodes + lo;
    uint64_t *pos = fg->lpos;
    size_t mask = fg->ncap - 1;
    for (uint32_t d = 0, beg = 0; d <= maxd; beg = off[d++]) {
        uint32_t end = off[d];
        for (uint32_t k = beg; k < end; k++) {
            uint32_t i = lvl[k];
            uint32_t pg = par[i] == NONE ? KL_FG_ROOT : hint[par[i]];
            if (par[i] != NONE && (pg & PEND)) { /* under a new path: new as well */
                pos[k] = UINT64_MAX;
                continue;
            }
            uint64_t key = (uint64_t)pg << 32 | fg->lmap[nodes[i].frame];
            pos[k] = nslot_pos(fg, key);
            __builtin_prefetch(&fg->nslots[pos[k]]);
        }
        for (uint32_t k = beg; k < end; k++) {
            uint32_t i = lvl[k];
            uint32_t pg = par[i] == NONE ? KL_FG_ROOT : hint[par[i]];
            uint64_t key = (uint64_t)pg << 32 | fg->lmap[nodes[i].frame];
            hint[i] = NONE;
            for (size_t j = pos[k]; j != UINT64_MAX; j = (j + 1) & mask) {
                uint64_t sk = fg->nslots[j].key;
                if (sk == key) {
                    hint[i] = fg->nslots[j].node;
                    __builtin_prefetch(&fg->nodes[hint[i]], 1);
                    break;
                }
                if (sk == UINT64_MAX)
                    break;
            }
            if (hint[i] == NONE)
                hint[i] = PEND | pending_get(fg, key);
        }
    }
}

static int add_nodes(struct kl_flamegraph *fg, const struct kl_calltree *t,
                     const struct kl_cthread *th, const struct kl_fg_add *how, bool resolved,
                     uint32_t ex, struct kl_err *err)
{
    size_t sp = 0;
    uint32_t prev_depth = 0, skip_depth = NONE;
    bool first = true;
    const struct kl_cnode *nodes = t->nodes;
    for (uint32_t i = th->first_node; i < th->first_node + th->n_nodes; i++) {
        const struct kl_cnode *cn = &nodes[i];
        uint32_t d = cn->depth;
        if (first ? d != 0 : d > prev_depth + 1)
            return kl_err_set(err, KL_R_CALLTREE_CORRUPT, "node %u: depth %u after %u", i, d,
                              prev_depth);
        first = false;
        prev_depth = d;
        if (skip_depth != NONE) {
            if (d > skip_depth)
                continue;
            skip_depth = NONE;
        }
        while (sp > d)
            close_top(fg, sp--, ex);
        if (cn->frame >= t->n_frames)
            return kl_err_set(err, KL_R_CALLTREE_CORRUPT, "node %u: frame %u of %u", i, cn->frame,
                              t->n_frames);
        if (cn->start_ns > cn->end_ns)
            return kl_err_set(err, KL_R_CALLTREE_CORRUPT, "node %u: start after end", i);
        uint64_t dur, sc;
        if (how->slice) {
            uint64_t s = cn->start_ns > how->slice_start_ns ? cn->start_ns : how->slice_start_ns;
            uint64_t e = cn->end_ns < how->slice_end_ns ? cn->end_ns : how->slice_end_ns;
            if (s >= e) {
                skip_depth = d;
                continue;
            }
            dur = e - s;
            sc = (dur + KL_FG_SLICE_NS - 1) / KL_FG_SLICE_NS;
            if (sc > cn->sample_count)
                sc = cn->sample_count;
        } else {
            dur = cn->end_ns - cn->start_ns;
            sc = cn->sample_count;
        }
        uint32_t gf = fg->lmap[cn->frame];
        if (gf == NONE)
            gf = map_frame(fg, t, cn->frame);
        uint32_t parent = d ? fg->stk[d - 1].gnode : KL_FG_ROOT;
        uint32_t gid = resolved ? fg->hint[i - th->first_node] : NONE;
        if (gid != NONE && (gid & PEND)) {
            uint32_t *pid = &fg->pend_id[gid & ~PEND];
            if (*pid == NONE)
                *pid = node_new(fg, parent, gf, d);
            gid = *pid;
        } else if (gid == NONE) {
            flush_inserts(fg);
            gid = node_get(fg, parent, gf, d);
        }
        if (gid == NONE)
            return kl_err_set(err, KL_R_CALLTREE_TOO_LARGE, "flamegraph over %u nodes",
                              KL_FG_MAX_NODES);
        struct gnode *n = &fg->nodes[gid];
        n->occ++;
        n->samples += sc;
        n->dur += dur;
        frame_push_dur(&fg->frames[gf], dur);
        if (d) {
            fg->stk[d - 1].child_dur += dur;
            fg->stk[d - 1].child_sc += sc;
        }
        if (sp == fg->cap_stk)
            GROW(fg->stk, sp, fg->cap_stk, sp + 1);
        fg->stk[sp++] = (struct sent){gid, cn->frame, d, dur, sc, 0, 0, 0, 0};
    }
    while (sp > 0)
        close_top(fg, sp--, ex);
    return 0;
}

/* One thread of a tree: resolve, then add; the nodes created go into the node map at the
 * end (also after an error, so the map always holds every node). */
static int add_thread(struct kl_flamegraph *fg, const struct kl_calltree *t,
                      const struct kl_cthread *th, const struct kl_fg_add *how, uint32_t ex,
                      struct kl_err *err)
{
    /* into an empty accumulator every path is new: resolving would only fill the pending
     * table (as large as the tree); one profile's flamegraph goes straight to add_nodes */
    bool resolve = !how->slice && fg->n_nodes > 0;
    if (resolve)
        resolve_thread(fg, t, th);
    int rc = add_nodes(fg, t, th, how, resolve, ex, err);
    flush_inserts(fg);
    pending_reset(fg);
    return rc;
}

int kl_flamegraph_add(struct kl_flamegraph *fg, const struct kl_calltree *t,
                      const struct kl_fg_add *how, struct kl_err *err)
{
    static const struct kl_fg_add defaults = {0};
    if (!how)
        how = &defaults;
    GROW(fg->lmap, 0, fg->cap_lmap, t->n_frames);
    GROW(fg->lflags, 0, fg->cap_lflags, t->n_frames);
    GROW(fg->lfp, 0, fg->cap_lfp, t->n_frames);
    if (t->n_frames)
        memset(fg->lmap, 0xff, t->n_frames * sizeof *fg->lmap);
    const struct kl_fg_example *e = how->example;
    bool per_thread = e && e->profiler_id.ptr && !e->thread_id.ptr;
    uint32_t ex = NONE;
    if (e && !per_thread && (ex = example_add(fg, e, KL_STR_NULL)) == NONE)
        return kl_err_set(err, KL_R_CALLTREE_TOO_LARGE, "more than %u examples",
                          KL_FG_MAX_EXAMPLES);
    for (uint32_t ti = 0; ti < t->n_threads; ti++) {
        const struct kl_cthread *th = &t->threads[ti];
        if (how->threads == KL_CALLTREE_ACTIVE && !th->active)
            continue;
        if (th->first_node > t->n_nodes || th->n_nodes > t->n_nodes - th->first_node)
            return kl_err_set(err, KL_R_CALLTREE_CORRUPT, "thread %u: nodes out of range", ti);
        if (per_thread && (ex = example_add(fg, e, nz(th->id))) == NONE)
            return kl_err_set(err, KL_R_CALLTREE_TOO_LARGE, "more than %u examples",
                              KL_FG_MAX_EXAMPLES);
        if (add_thread(fg, t, th, how, ex, err) < 0) {
            fg->n_lfns = 0;
            fg->n_lselfs = 0;
            memset(fg->lslots, 0, fg->lcap * sizeof *fg->lslots);
            return -1;
        }
        if (per_thread && fg->opt.metrics)
            unit_flush(fg, ex);
    }
    if (!per_thread && fg->opt.metrics)
        unit_flush(fg, ex);
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Merging accumulators                                                                 */

int kl_flamegraph_merge(struct kl_flamegraph *dst, const struct kl_flamegraph *src,
                        struct kl_err *err)
{
    if (src->n_examples > KL_FG_MAX_EXAMPLES - dst->n_examples)
        return kl_err_set(err, KL_R_CALLTREE_TOO_LARGE, "more than %u examples",
                          KL_FG_MAX_EXAMPLES);
    uint32_t *fmap = kl_xmalloc(((size_t)src->n_frames + 1) * sizeof *fmap);
    for (uint32_t i = 0; i < src->n_frames; i++) {
        const struct gframe *g = &src->frames[i];
        fmap[i] = frame_get(dst, &g->f, g->hash);
        struct gframe *d = &dst->frames[fmap[i]];
        if (g->n_durs) {
            GROW_BIG(d->durs, d->n_durs, d->cap_durs, d->n_durs + g->n_durs);
            memcpy(d->durs + d->n_durs, g->durs, g->n_durs * sizeof *g->durs);
            d->n_durs += g->n_durs;
        }
    }
    uint32_t off = dst->n_examples;
    for (uint32_t i = 0; i < src->n_examples; i++)
        example_add(dst, &src->examples[i], KL_STR_NULL);
    uint32_t *nmap = kl_xmalloc(((size_t)src->n_nodes + 1) * sizeof *nmap);
    uint32_t *xoff, *xex;
    examples_index(src, &xoff, &xex);
    int rc = 0;
    for (uint32_t i = 0; i < src->n_nodes; i++) {
        const struct gnode *s = &src->nodes[i];
        uint32_t p = s->parent == KL_FG_ROOT ? KL_FG_ROOT : nmap[s->parent];
        uint32_t g = node_get(dst, p, fmap[s->frame], s->depth);
        if (g == NONE) {
            rc = kl_err_set(err, KL_R_CALLTREE_TOO_LARGE, "flamegraph over %u nodes",
                            KL_FG_MAX_NODES);
            break;
        }
        nmap[i] = g;
        struct gnode *d = &dst->nodes[g];
        d->occ += s->occ;
        d->samples += s->samples;
        d->dur += s->dur;
        d->self += s->self;
        for (uint32_t k = xoff[i]; k < xoff[i + 1]; k++)
            node_attach_example(dst, &dst->nodes[g], xex[k] + off);
    }
    for (uint32_t i = 0; i < src->n_fns && rc == 0; i++) {
        const struct gfn *s = &src->fns[i];
        bool created;
        struct gfn *f = fn_get(dst, s->fp, &created);
        if (created) {
            f->name = dup_str(dst, s->name);
            f->package = dup_str(dst, s->package);
            f->in_app = s->in_app;
            f->maxval = s->maxval;
            f->worst = s->worst == NONE ? NONE : s->worst + off;
        } else if (s->maxval > f->maxval) {
            f->maxval = s->maxval;
            f->worst = s->worst == NONE ? NONE : s->worst + off;
        }
        for (uint32_t k = 0; k < s->n_ex && f->n_ex < KL_FG_MAX_FUNCTION_EXAMPLES; k++)
            f->ex[f->n_ex++] = s->ex[k] + off;
        f->sum += s->sum;
        f->count += s->count;
        if (s->n_selfs) {
            GROW_BIG(f->selfs, f->n_selfs, f->cap_selfs, f->n_selfs + s->n_selfs);
            memcpy(f->selfs + f->n_selfs, s->selfs, s->n_selfs * sizeof *s->selfs);
            f->n_selfs += s->n_selfs;
        }
    }
    free(xoff);
    free(xex);
    free(nmap);
    free(fmap);
    return rc;
}

/* ---------------------------------------------------------------------------------- */
/* Accessors                                                                            */

uint32_t kl_flamegraph_n_nodes(const struct kl_flamegraph *fg)
{
    return fg->n_nodes;
}

uint32_t kl_flamegraph_n_frames(const struct kl_flamegraph *fg)
{
    return fg->n_frames;
}

uint32_t kl_flamegraph_n_examples(const struct kl_flamegraph *fg)
{
    return fg->n_examples;
}

void kl_flamegraph_node(const struct kl_flamegraph *fg, uint32_t i, struct kl_fg_node *out)
{
    const struct gnode *n = &fg->nodes[i];
    out->parent = n->parent;
    out->frame = n->frame;
    out->depth = n->depth;
    out->n_examples = n->ex_n;
    out->occurrences = n->occ;
    out->sample_count = n->samples;
    out->duration_ns = n->dur;
    out->self_ns = n->self;
}

uint32_t kl_flamegraph_node_example(const struct kl_flamegraph *fg, uint32_t i, uint32_t j)
{
    for (size_t k = 0; k < fg->n_exlog; k++)
        if (fg->exlog[k].node == i && j-- == 0)
            return fg->exlog[k].ex;
    return NONE;
}

const struct kl_fg_frame *kl_flamegraph_frame(const struct kl_flamegraph *fg, uint32_t i)
{
    return &fg->frames[i].f;
}

const struct kl_fg_example *kl_flamegraph_example(const struct kl_flamegraph *fg, uint32_t i)
{
    return &fg->examples[i];
}

/* Read-only probe of the node map. */
static uint32_t node_find(const struct kl_flamegraph *fg, uint32_t parent, uint32_t frame)
{
    uint64_t key = (uint64_t)parent << 32 | frame;
    size_t mask = fg->ncap - 1, j = nslot_pos(fg, key);
    for (;;) {
        uint64_t k = fg->nslots[j].key;
        if (k == key)
            return fg->nslots[j].node;
        if (k == UINT64_MAX)
            return NONE;
        j = (j + 1) & mask;
    }
}

static uint32_t frame_find(const struct kl_flamegraph *fg, struct kl_str name,
                           struct kl_str package)
{
    uint64_t h = frame_hash(name, package);
    size_t mask = fg->fcap - 1, j = h & mask;
    uint32_t id;
    while ((id = fg->fslots[j]) != NONE) {
        const struct gframe *g = &fg->frames[id];
        if (g->hash == h && kl_str_eq(g->f.name, name) && kl_str_eq(g->f.package, package))
            return id;
        j = (j + 1) & mask;
    }
    return NONE;
}

uint32_t kl_flamegraph_find(const struct kl_flamegraph *fg, const char *const *names, uint32_t n,
                            const char *package)
{
    uint32_t cur = KL_FG_ROOT;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t f = frame_find(fg, kl_str_c(names[i]), kl_str_c(package ? package : ""));
        if (f == NONE)
            return KL_FG_ROOT;
        cur = node_find(fg, cur, f);
        if (cur == NONE)
            return KL_FG_ROOT;
    }
    return cur;
}

/* ---------------------------------------------------------------------------------- */
/* Percentiles                                                                          */

/* Rearrange v so that v[k] is the k-th smallest, smaller-or-equal before, larger-or-equal
 * after (nth_element: Hoare partition around a median of three). */
static void select_kth(uint64_t *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (hi > lo) {
        if (hi - lo < 16) {
            for (size_t i = lo + 1; i <= hi; i++) {
                uint64_t x = v[i];
                size_t j = i;
                while (j > lo && v[j - 1] > x) {
                    v[j] = v[j - 1];
                    j--;
                }
                v[j] = x;
            }
            return;
        }
        size_t mid = lo + (hi - lo) / 2;
        uint64_t a = v[lo], b = v[mid], c = v[hi];
        uint64_t pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        size_t i = lo, j = hi;
        for (;;) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i >= j)
                break;
            uint64_t t = v[i];
            v[i] = v[j];
            v[j] = t;
            i++;
            j--;
        }
        /* [lo..j] <= pivot <= [j+1..hi] */
        if (k <= j)
            hi = j;
        else
            lo = j + 1;
    }
}

/* vroom's nearest rank: index ceil(n * q) - 1 in sorted order (float math, as in Go). */
static size_t rank_index(size_t n, double q)
{
    double c = ceil((double)n * q);
    size_t k = c < 1 ? 0 : (size_t)c - 1;
    return k < n ? k : n - 1;
}

/* p75, p95, p99 of v (reordered). Each selection narrows to the part above the previous. */
static void percentiles(uint64_t *v, size_t n, uint64_t *p75, uint64_t *p95, uint64_t *p99)
{
    if (!n) {
        *p75 = *p95 = *p99 = 0;
        return;
    }
    size_t k75 = rank_index(n, 0.75), k95 = rank_index(n, 0.95), k99 = rank_index(n, 0.99);
    select_kth(v, n, k75);
    *p75 = v[k75];
    select_kth(v + k75, n - k75, k95 - k75);
    *p95 = v[k95];
    select_kth(v + k95, n - k95, k99 - k95);
    *p99 = v[k99];
}

void kl_flamegraph_frame_infos(struct kl_flamegraph *fg, struct kl_arena *a,
                               struct kl_fg_frame_info **out)
{
    struct kl_fg_frame_info *fi = kl_arena_calloc(a, fg->n_frames + 1, sizeof *fi);
    for (uint32_t i = 0; i < fg->n_nodes; i++) {
        const struct gnode *n = &fg->nodes[i];
        fi[n->frame].count += n->occ;
        fi[n->frame].weight += n->dur;
        fi[n->frame].sum_self_ns += n->self;
    }
    for (uint32_t i = 0; i < fg->n_frames; i++) {
        struct gframe *g = &fg->frames[i];
        percentiles(g->durs, g->n_durs, &fi[i].p75_ns, &fi[i].p95_ns, &fi[i].p99_ns);
    }
    *out = fi;
}

void kl_flamegraph_functions(struct kl_flamegraph *fg, struct kl_arena *a, uint32_t max_n,
                             struct kl_fg_function **out, uint32_t *n_out)
{
    if (!max_n)
        max_n = KL_FG_DEFAULT_FUNCTIONS;
    uint32_t *order = kl_arena_alloc(a, ((size_t)fg->n_fns + 1) * sizeof *order);
    for (uint32_t i = 0; i < fg->n_fns; i++)
        order[i] = i;
    /* sort by sum desc, fingerprint asc: a shell sort keeps this free of global state */
    for (uint32_t gap = fg->n_fns / 2; gap > 0; gap /= 2) {
        for (uint32_t i = gap; i < fg->n_fns; i++) {
            uint32_t v = order[i], j = i;
            while (j >= gap) {
                const struct gfn *x = &fg->fns[v], *y = &fg->fns[order[j - gap]];
                if (x->sum > y->sum || (x->sum == y->sum && x->fp < y->fp)) {
                    order[j] = order[j - gap];
                    j -= gap;
                } else {
                    break;
                }
            }
            order[j] = v;
        }
    }
    uint32_t n = fg->n_fns < max_n ? fg->n_fns : max_n;
    struct kl_fg_function *r = kl_arena_calloc(a, (size_t)n + 1, sizeof *r);
    for (uint32_t i = 0; i < n; i++) {
        struct gfn *f = &fg->fns[order[i]];
        struct kl_fg_function *o = &r[i];
        o->name = f->name;
        o->package = f->package;
        o->fingerprint = f->fp;
        o->in_app = f->in_app;
        percentiles(f->selfs, f->n_selfs, &o->p75_ns, &o->p95_ns, &o->p99_ns);
        o->avg_ns = f->n_selfs ? (double)f->sum / (double)f->n_selfs : 0;
        o->sum_ns = f->sum;
        o->count = f->count;
        o->worst = f->worst;
        o->n_examples = f->n_ex;
        memcpy(o->examples, f->ex, sizeof o->examples);
    }
    *out = r;
    *n_out = n;
}

/* ---------------------------------------------------------------------------------- */
/* Tree walks for the writers                                                           */

struct kids {
    uint32_t *first, *next, *last; /* per node; roots under index n_nodes */
};

static void kids_build(struct kl_arena *a, const struct gnode *nodes, uint32_t n, struct kids *k)
{
    k->first = kl_arena_alloc(a, ((size_t)n + 1) * sizeof(uint32_t));
    k->next = kl_arena_alloc(a, ((size_t)n + 1) * sizeof(uint32_t));
    k->last = kl_arena_alloc(a, ((size_t)n + 1) * sizeof(uint32_t));
    memset(k->first, 0xff, ((size_t)n + 1) * sizeof(uint32_t));
    memset(k->next, 0xff, ((size_t)n + 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = nodes[i].parent == KL_FG_ROOT ? n : nodes[i].parent;
        if (k->first[p] == NONE)
            k->first[p] = i;
        else
            k->next[k->last[p]] = i;
        k->last[p] = i;
    }
}

/* Depth-first order (children in creation order) into order[0..n). */
static void dfs_order(struct kl_arena *a, const struct kids *k, uint32_t n, uint32_t *order)
{
    uint32_t *stack = kl_arena_alloc(a, ((size_t)n + 1) * sizeof *stack);
    size_t sp = 0, m = 0;
    /* push roots in reverse so the first root pops first */
    uint32_t cnt = 0;
    for (uint32_t c = k->first[n]; c != NONE; c = k->next[c])
        stack[sp + cnt++] = c;
    for (uint32_t i = 0; i < cnt / 2; i++) {
        uint32_t t = stack[i];
        stack[i] = stack[cnt - 1 - i];
        stack[cnt - 1 - i] = t;
    }
    sp = cnt;
    while (sp) {
        uint32_t v = stack[--sp];
        order[m++] = v;
        size_t base = sp;
        for (uint32_t c = k->first[v]; c != NONE; c = k->next[c])
            stack[sp++] = c;
        for (size_t i = base, j = sp; i + 1 < j; i++, j--) {
            uint32_t t = stack[i];
            stack[i] = stack[j - 1];
            stack[j - 1] = t;
        }
    }
}

/* Name as written in collapsed stacks. */
static void put_collapsed_name(struct kl_buf *b, struct kl_str name)
{
    if (!name.len) {
        kl_buf_puts(b, "unknown");
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        if (c == ';' || c == '\n' || c == '\r') {
            kl_buf_append(b, name.ptr + start, i - start);
            kl_buf_putc(b, '_');
            start = i + 1;
        }
    }
    kl_buf_append(b, name.ptr + start, name.len - start);
}

static int buf_result(struct kl_buf *out, struct kl_err *err)
{
    if (kl_err_is_set(&out->err)) {
        if (err && !kl_err_is_set(err))
            *err = out->err;
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Speedscope                                                                           */

struct sample {
    uint32_t node, depth;
    uint64_t count, dur;
    uint32_t idx;
};

static int cmp_sample_desc(const void *a, const void *b)
{
    const struct sample *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    if (x->dur != y->dur)
        return x->dur > y->dur ? -1 : 1;
    if (x->depth != y->depth)
        return x->depth > y->depth ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_sample_idx(const void *a, const void *b)
{
    const struct sample *x = a, *y = b;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void put_f64_seconds(struct kl_jw *w, const char *key, int64_t ns)
{
    kl_jw_key(w, key);
    kl_jw_f64(w, (double)ns / 1e9);
}

static void write_example(struct kl_jw *w, const struct kl_fg_example *e)
{
    kl_jw_obj_begin(w);
    if (e->project_id) {
        kl_jw_key(w, "project_id");
        kl_jw_u64(w, e->project_id);
    }
    static const char *const keys[] = {"profile_id", "profiler_id", "chunk_id", "transaction_id",
                                       "thread_id"};
    const struct kl_str vals[] = {e->profile_id, e->profiler_id, e->chunk_id, e->transaction_id,
                                  e->thread_id};
    for (size_t i = 0; i < 5; i++) {
        if (vals[i].len) {
            kl_jw_key(w, keys[i]);
            kl_jw_str(w, vals[i]);
        }
    }
    if (e->start_ns)
        put_f64_seconds(w, "start", e->start_ns);
    if (e->end_ns)
        put_f64_seconds(w, "end", e->end_ns);
    kl_jw_obj_end(w);
}

static struct kl_str basename_of(struct kl_str p)
{
    size_t i = p.len;
    while (i > 0 && p.ptr[i - 1] != '/' && p.ptr[i - 1] != '\\')
        i--;
    return kl_str_make(p.ptr + i, p.len - i);
}

static void write_frame_obj(struct kl_jw *w, const struct kl_fg_frame *f)
{
    kl_jw_obj_begin(w);
    kl_jw_key(w, "name");
    kl_jw_str(w, nz(f->name));
    if (f->package.len) {
        kl_jw_key(w, "image");
        kl_jw_str(w, f->package);
    }
    if (f->path.len) {
        kl_jw_key(w, "path");
        kl_jw_str(w, f->path);
        struct kl_str file = basename_of(f->path);
        if (file.len) {
            kl_jw_key(w, "file");
            kl_jw_str(w, file);
        }
    }
    if (f->line) {
        kl_jw_key(w, "line");
        kl_jw_u64(w, f->line);
    }
    kl_jw_key(w, "is_application");
    kl_jw_bool(w, (f->flags & KL_CFRAME_APPLICATION) != 0);
    kl_jw_key(w, "fingerprint");
    kl_jw_u64(w, f->fingerprint);
    kl_jw_obj_end(w);
}

static void write_metrics(const struct kl_flamegraph *fg, struct kl_jw *w,
                          const struct kl_fg_function *fns, uint32_t n)
{
    kl_jw_key(w, "metrics");
    kl_jw_arr_begin(w);
    for (uint32_t i = 0; i < n; i++) {
        const struct kl_fg_function *f = &fns[i];
        kl_jw_obj_begin(w);
        kl_jw_key(w, "name");
        kl_jw_str(w, nz(f->name));
        kl_jw_key(w, "package");
        kl_jw_str(w, nz(f->package));
        kl_jw_key(w, "fingerprint");
        kl_jw_u64(w, f->fingerprint);
        kl_jw_key(w, "in_app");
        kl_jw_bool(w, f->in_app);
        kl_jw_key(w, "p75");
        kl_jw_u64(w, f->p75_ns);
        kl_jw_key(w, "p95");
        kl_jw_u64(w, f->p95_ns);
        kl_jw_key(w, "p99");
        kl_jw_u64(w, f->p99_ns);
        kl_jw_key(w, "avg");
        kl_jw_f64(w, f->avg_ns);
        kl_jw_key(w, "sum");
        kl_jw_u64(w, f->sum_ns);
        kl_jw_key(w, "count");
        kl_jw_u64(w, f->count);
        kl_jw_key(w, "worst");
        if (f->worst != NONE) {
            write_example(w, &fg->examples[f->worst]);
        } else {
            kl_jw_obj_begin(w);
            kl_jw_obj_end(w);
        }
        kl_jw_key(w, "examples");
        kl_jw_arr_begin(w);
        for (uint32_t k = 0; k < f->n_examples; k++)
            write_example(w, &fg->examples[f->examples[k]]);
        kl_jw_arr_end(w);
        kl_jw_obj_end(w);
    }
    kl_jw_arr_end(w);
}

/* Frame infos and function metrics (the percentiles: selections over every node duration
 * and self time, a fifth of the writer's time on 10k profiles) only read nodes and reorder
 * the frames' and functions' own arrays, which nothing else in the writer touches; so a
 * second thread computes them while the first walks the tree and writes the samples. */
struct stats_job {
    struct kl_flamegraph *fg;
    bool metrics;
    uint32_t max_functions;
    struct kl_arena a; /* the results */
    struct kl_fg_frame_info *fi;
    struct kl_fg_function *fns;
    uint32_t n_fns;
};

static void *stats_run(void *arg)
{
    struct stats_job *j = arg;
    kl_flamegraph_frame_infos(j->fg, &j->a, &j->fi);
    if (j->metrics)
        kl_flamegraph_functions(j->fg, &j->a, j->max_functions, &j->fns, &j->n_fns);
    return NULL;
}

/* Elements of a JSON array written in batches: the elements of a batch, comma-joined, go
 * out as one kl_jw_raw (one element as far as the writer's separators go), so the bytes
 * are the same as writing them one by one, without a writer call per number (4 M example
 * ids and 3 x 714k sample values on 10k profiles). */
#define BATCH_BYTES (64u << 10)

struct batch {
    struct kl_jw *w;
    char *buf; /* BATCH_BYTES */
    size_t len;
};

static void batch_flush(struct batch *b)
{
    if (b->len)
        kl_jw_raw(b->w, b->buf, b->len);
    b->len = 0;
}

/* Where to write the next element of at most n bytes; NULL when n does not fit a batch
 * (then write it with kl_jw_raw after batch_flush). */
static char *batch_room(struct batch *b, size_t n)
{
    if (n + 1 > BATCH_BYTES)
        return NULL;
    if (b->len + n + 1 > BATCH_BYTES)
        batch_flush(b);
    if (b->len)
        b->buf[b->len++] = ',';
    return b->buf + b->len;
}

static void batch_u64(struct batch *b, uint64_t v)
{
    char *p = batch_room(b, 20);
    b->len += kl_fmt_u64(v, p);
}

/* The text of the previous sample's frame path, "[f0,f1,...": post-order samples share
 * most of their path with the one before, so rendering a sample only formats the frames
 * below the deepest ancestor the two have in common (the bytes equal kl_jw_u32_array's). */
struct pathtext {
    char *buf;      /* buf[0] = '[' */
    size_t len;     /* bytes of buf in use */
    uint32_t *node; /* per rendered depth: its node */
    size_t *off;    /* per rendered depth: where its segment starts */
    uint32_t *up;   /* scratch: nodes being added, by depth */
    uint32_t depth; /* depths [0, depth) are rendered */
};

static void pathtext_init(struct pathtext *pt, struct kl_arena *a, uint32_t maxd)
{
    size_t n = (size_t)maxd + 2;
    pt->buf = kl_arena_alloc(a, n * 12 + 4);
    pt->node = kl_arena_alloc(a, n * sizeof *pt->node);
    pt->off = kl_arena_alloc(a, n * sizeof *pt->off);
    pt->up = kl_arena_alloc(a, n * sizeof *pt->up);
    pt->buf[0] = '[';
    pt->len = 1;
    pt->depth = 0;
}

/* Render the path of node v (depth d) and add it to b as one array. */
static void pathtext_write(struct pathtext *pt, const struct kl_flamegraph *fg,
                           const uint32_t *fout, uint32_t v, uint32_t d, struct batch *b)
{
    int64_t e = d;
    uint32_t u = v;
    while (e >= 0 && !((uint32_t)e < pt->depth && pt->node[e] == u)) {
        pt->up[e] = u;
        u = fg->nodes[u].parent;
        e--;
    }
    /* depths [0, e] are rendered already; re-render (e, d] */
    if ((uint64_t)(e + 1) < pt->depth)
        pt->len = pt->off[e + 1];
    for (uint32_t k = (uint32_t)(e + 1); k <= d; k++) {
        pt->off[k] = pt->len;
        pt->node[k] = pt->up[k];
        if (k)
            pt->buf[pt->len++] = ',';
        pt->len += kl_fmt_u64(fout[fg->nodes[pt->up[k]].frame], pt->buf + pt->len);
    }
    pt->depth = d + 1;
    pt->buf[pt->len] = ']';
    char *p = batch_room(b, pt->len + 1);
    if (p) {
        memcpy(p, pt->buf, pt->len + 1);
        b->len += pt->len + 1;
    } else {
        batch_flush(b);
        kl_jw_raw(b->w, pt->buf, pt->len + 1);
    }
}

int kl_flamegraph_write_speedscope(struct kl_flamegraph *fg, const struct kl_fg_speedscope_opts *o,
                                   struct kl_buf *out, struct kl_err *err)
{
    static const struct kl_fg_speedscope_opts defaults = {0};
    if (!o)
        o = &defaults;
    struct kl_arena a;
    kl_arena_init(&a);
    struct stats_job job = {.fg = fg, .metrics = o->metrics, .max_functions = o->max_functions};
    kl_arena_init(&job.a);
    pthread_t th;
    bool threaded = pthread_create(&th, NULL, stats_run, &job) == 0;
    if (!threaded)
        stats_run(&job);
    uint32_t n = fg->n_nodes;
    struct kids k;
    kids_build(&a, fg->nodes, n, &k);
    uint32_t *order = kl_arena_alloc(&a, ((size_t)n + 1) * sizeof *order);
    dfs_order(&a, &k, n, order);

    /* frames numbered by first visit; samples children-before-parent (post-order) */
    uint32_t *fout = kl_arena_alloc(&a, ((size_t)fg->n_frames + 1) * sizeof *fout);
    uint32_t *fin = kl_arena_alloc(&a, ((size_t)fg->n_frames + 1) * sizeof *fin);
    memset(fout, 0xff, ((size_t)fg->n_frames + 1) * sizeof *fout);
    uint32_t nf = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t f = fg->nodes[order[i]].frame;
        if (fout[f] == NONE) {
            fout[f] = nf;
            fin[nf++] = f;
        }
    }
    struct sample *samples = kl_arena_alloc(&a, ((size_t)n + 1) * sizeof *samples);
    uint32_t ns = 0;
    uint64_t end_value = 0;
    /* post-order = reverse of (pre-order with children reversed); simpler: an explicit
     * stack of (node, next child) pairs */
    uint32_t *stk = kl_arena_alloc(&a, ((size_t)n + 1) * sizeof *stk);
    uint32_t *cur = kl_arena_alloc(&a, ((size_t)n + 1) * sizeof *cur);
    size_t sp = 0;
    for (uint32_t r = k.first[n]; r != NONE; r = k.next[r]) {
        stk[0] = r;
        cur[0] = k.first[r];
        sp = 1;
        while (sp) {
            uint32_t v = stk[sp - 1];
            uint32_t c = cur[sp - 1];
            if (c != NONE) {
                cur[sp - 1] = k.next[c];
                stk[sp] = c;
                cur[sp] = k.first[c];
                sp++;
                continue;
            }
            sp--;
            const struct gnode *g = &fg->nodes[v];
            uint64_t cnt = g->samples, dur = g->dur;
            bool emit = true;
            if (k.first[v] != NONE) {
                uint64_t cs = 0, cd = 0;
                for (uint32_t ch = k.first[v]; ch != NONE; ch = k.next[ch]) {
                    cs += fg->nodes[ch].samples;
                    cd += fg->nodes[ch].dur;
                }
                emit = cnt > cs;
                cnt = emit ? cnt - cs : 0;
                dur = dur > cd ? dur - cd : 0;
            }
            if (emit) {
                samples[ns] = (struct sample){v, g->depth, cnt, dur, ns};
                ns++;
                end_value += cnt;
            }
        }
    }
    if (o->max_samples && ns > o->max_samples) {
        qsort(samples, ns, sizeof *samples, cmp_sample_desc);
        ns = o->max_samples;
        qsort(samples, ns, sizeof *samples, cmp_sample_idx);
    }

    struct kl_jw w;
    kl_jw_init(&w, out);
    kl_jw_obj_begin(&w);
    kl_jw_key(&w, "activeProfileIndex");
    kl_jw_u64(&w, 0);
    kl_jw_key(&w, "metadata");
    kl_jw_obj_begin(&w);
    kl_jw_key(&w, "projectID");
    kl_jw_u64(&w, o->project_id);
    kl_jw_obj_end(&w);
    kl_jw_key(&w, "platform");
    kl_jw_cstr(&w, "");
    kl_jw_key(&w, "profiles");
    kl_jw_arr_begin(&w);
    kl_jw_obj_begin(&w);
    kl_jw_key(&w, "endValue");
    kl_jw_u64(&w, end_value);
    kl_jw_key(&w, "isMainThread");
    kl_jw_bool(&w, true);
    kl_jw_key(&w, "name");
    kl_jw_cstr(&w, "");
    kl_jw_key(&w, "startValue");
    kl_jw_u64(&w, 0);
    kl_jw_key(&w, "threadID");
    kl_jw_u64(&w, 0);
    kl_jw_key(&w, "type");
    kl_jw_cstr(&w, "sampled");
    kl_jw_key(&w, "unit");
    kl_jw_cstr(&w, "count");

    uint32_t maxd = 0;
    for (uint32_t i = 0; i < ns; i++)
        if (samples[i].depth > maxd)
            maxd = samples[i].depth;
    struct pathtext pt;
    pathtext_init(&pt, &a, maxd);
    struct batch bt = {&w, kl_arena_alloc(&a, BATCH_BYTES), 0};
    kl_jw_key(&w, "samples");
    kl_jw_arr_begin(&w);
    for (uint32_t i = 0; i < ns; i++) {
        pathtext_write(&pt, fg, fout, samples[i].node, samples[i].depth, &bt);
        if ((i & 1023) == 1023 && kl_err_is_set(&out->err))
            break;
    }
    batch_flush(&bt);
    kl_jw_arr_end(&w);

    /* examples referenced by the kept samples, numbered by first reference */
    uint32_t *exout = kl_arena_alloc(&a, ((size_t)fg->n_examples + 1) * sizeof *exout);
    uint32_t *exin = kl_arena_alloc(&a, ((size_t)fg->n_examples + 1) * sizeof *exin);
    memset(exout, 0xff, ((size_t)fg->n_examples + 1) * sizeof *exout);
    uint32_t nex = 0;
    uint32_t *xoff, *xex;
    examples_index(fg, &xoff, &xex);
    kl_jw_key(&w, "samples_examples");
    kl_jw_arr_begin(&w);
    for (uint32_t i = 0; i < ns; i++) {
        uint32_t v = samples[i].node, nx = xoff[v + 1] - xoff[v];
        char *p = batch_room(&bt, 2 + (size_t)nx * 11);
        bool direct = !p;
        if (direct) { /* more examples than a batch holds: through the writer */
            batch_flush(&bt);
            kl_jw_arr_begin(&w);
        }
        size_t len = 0;
        if (!direct)
            p[len++] = '[';
        for (uint32_t x = xoff[v]; x < xoff[v + 1]; x++) {
            uint32_t e = xex[x];
            if (exout[e] == NONE) {
                exout[e] = nex;
                exin[nex++] = e;
            }
            if (direct) {
                kl_jw_u64(&w, exout[e]);
                continue;
            }
            if (x > xoff[v])
                p[len++] = ',';
            len += kl_fmt_u64(exout[e], p + len);
        }
        if (direct) {
            kl_jw_arr_end(&w);
        } else {
            p[len++] = ']';
            bt.len += len;
        }
    }
    batch_flush(&bt);
    kl_jw_arr_end(&w);
    free(xoff);
    free(xex);
    static const char *const arrays[] = {"weights", "sample_counts", "sample_durations_ns"};
    for (int arr = 0; arr < 3; arr++) {
        kl_jw_key(&w, arrays[arr]);
        kl_jw_arr_begin(&w);
        for (uint32_t i = 0; i < ns; i++)
            batch_u64(&bt, arr == 2 ? samples[i].dur : samples[i].count);
        batch_flush(&bt);
        kl_jw_arr_end(&w);
    }
    kl_jw_obj_end(&w);
    kl_jw_arr_end(&w); /* profiles */
    kl_jw_key(&w, "projectID");
    kl_jw_u64(&w, o->project_id);

    kl_jw_key(&w, "shared");
    kl_jw_obj_begin(&w);
    kl_jw_key(&w, "frames");
    kl_jw_arr_begin(&w);
    for (uint32_t i = 0; i < nf; i++)
        write_frame_obj(&w, &fg->frames[fin[i]].f);
    kl_jw_arr_end(&w);
    if (threaded)
        pthread_join(th, NULL);
    const struct kl_fg_frame_info *fi = job.fi;
    kl_jw_key(&w, "frame_infos");
    kl_jw_arr_begin(&w);
    for (uint32_t i = 0; i < nf; i++) {
        const struct kl_fg_frame_info *x = &fi[fin[i]];
        kl_jw_obj_begin(&w);
        kl_jw_key(&w, "count");
        kl_jw_u64(&w, x->count);
        kl_jw_key(&w, "weight");
        kl_jw_u64(&w, x->weight);
        kl_jw_key(&w, "sumDuration");
        kl_jw_u64(&w, x->weight);
        kl_jw_key(&w, "sumSelfTime");
        kl_jw_u64(&w, x->sum_self_ns);
        kl_jw_key(&w, "p75Duration");
        kl_jw_u64(&w, x->p75_ns);
        kl_jw_key(&w, "p95Duration");
        kl_jw_u64(&w, x->p95_ns);
        kl_jw_key(&w, "p99Duration");
        kl_jw_u64(&w, x->p99_ns);
        kl_jw_obj_end(&w);
    }
    kl_jw_arr_end(&w);
    kl_jw_key(&w, "profiles");
    kl_jw_arr_begin(&w);
    for (uint32_t i = 0; i < nex; i++)
        write_example(&w, &fg->examples[exin[i]]);
    kl_jw_arr_end(&w);
    kl_jw_obj_end(&w); /* shared */
    kl_jw_key(&w, "transactionName");
    kl_jw_cstr(&w, "");
    if (o->metrics)
        write_metrics(fg, &w, job.fns, job.n_fns);
    kl_jw_obj_end(&w);
    kl_arena_release(&job.a);
    kl_arena_release(&a);
    return buf_result(out, err);
}

/* ---------------------------------------------------------------------------------- */
/* Collapsed stacks                                                                     */

static void put_stack(struct kl_buf *b, const struct kl_flamegraph *fg, uint32_t v, uint32_t *tmp)
{
    uint32_t d = fg->nodes[v].depth + 1;
    for (uint32_t j = d; j-- > 0; v = fg->nodes[v].parent)
        tmp[j] = fg->nodes[v].frame;
    for (uint32_t j = 0; j < d; j++) {
        if (j)
            kl_buf_putc(b, ';');
        put_collapsed_name(b, fg->frames[tmp[j]].f.name);
    }
}

int kl_flamegraph_write_collapsed(const struct kl_flamegraph *fg, enum kl_fg_weight wt,
                                  struct kl_buf *out, struct kl_err *err)
{
    struct kl_arena a;
    kl_arena_init(&a);
    uint32_t n = fg->n_nodes, maxd = 0;
    struct kids k;
    kids_build(&a, fg->nodes, n, &k);
    uint32_t *order = kl_arena_alloc(&a, ((size_t)n + 1) * sizeof *order);
    dfs_order(&a, &k, n, order);
    for (uint32_t i = 0; i < n; i++)
        if (fg->nodes[i].depth > maxd)
            maxd = fg->nodes[i].depth;
    uint32_t *tmp = kl_arena_alloc(&a, ((size_t)maxd + 2) * sizeof *tmp);
    for (uint32_t i = 0; i < n && !kl_err_is_set(&out->err); i++) {
        uint32_t v = order[i];
        const struct gnode *g = &fg->nodes[v];
        uint64_t self;
        if (wt == KL_FG_WEIGHT_NS) {
            self = g->self;
        } else {
            uint64_t cs = 0;
            for (uint32_t c = k.first[v]; c != NONE; c = k.next[c])
                cs += fg->nodes[c].samples;
            self = g->samples > cs ? g->samples - cs : 0;
        }
        if (!self)
            continue;
        put_stack(out, fg, v, tmp);
        kl_buf_printf(out, " %" PRIu64 "\n", self);
    }
    kl_arena_release(&a);
    return buf_result(out, err);
}

/* ---------------------------------------------------------------------------------- */
/* Differential flamegraphs                                                             */

struct dnode {
    uint32_t parent, depth;
    uint32_t fa, fb; /* frame id in a or b (NONE if absent there) */
    uint64_t a, b, self_a, self_b;
};

struct kl_fg_diff {
    enum kl_fg_weight weight;
    const struct kl_flamegraph *fa, *fb;
    struct kl_flamegraph *u; /* union tree: node ids = diff node ids */
    struct dnode *nodes;
    uint32_t n_nodes, cap_nodes;
    uint64_t total_a, total_b;
};

static void side_weights(const struct kl_flamegraph *fg, enum kl_fg_weight wt, uint32_t *first,
                         uint32_t *next, uint32_t v, uint64_t *incl, uint64_t *self)
{
    const struct gnode *g = &fg->nodes[v];
    if (wt == KL_FG_WEIGHT_NS) {
        *incl = g->dur;
        *self = g->self;
        return;
    }
    uint64_t cs = 0;
    for (uint32_t c = first[v]; c != NONE; c = next[c])
        cs += fg->nodes[c].samples;
    *incl = g->samples;
    *self = g->samples > cs ? g->samples - cs : 0;
}

static void diff_add_side(struct kl_fg_diff *d, const struct kl_flamegraph *src, int side)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kids k;
    kids_build(&a, src->nodes, src->n_nodes, &k);
    uint32_t *nmap = kl_arena_alloc(&a, ((size_t)src->n_nodes + 1) * sizeof *nmap);
    for (uint32_t i = 0; i < src->n_nodes; i++) {
        const struct gnode *s = &src->nodes[i];
        const struct gframe *sf = &src->frames[s->frame];
        uint32_t f = frame_get(d->u, &sf->f, sf->hash);
        uint32_t p = s->parent == KL_FG_ROOT ? KL_FG_ROOT : nmap[s->parent];
        uint32_t g = node_get(d->u, p, f, s->depth);
        kl_assert(g != NONE);
        nmap[i] = g;
        if (g >= d->n_nodes) {
            GROW(d->nodes, d->n_nodes, d->cap_nodes, (size_t)g + 1);
            for (uint32_t j = d->n_nodes; j <= g; j++)
                d->nodes[j] = (struct dnode){
                    d->u->nodes[j].parent, d->u->nodes[j].depth, NONE, NONE, 0, 0, 0, 0};
            d->n_nodes = g + 1;
        }
        uint64_t incl, self;
        side_weights(src, d->weight, k.first, k.next, i, &incl, &self);
        struct dnode *dn = &d->nodes[g];
        if (side == 0) {
            dn->fa = s->frame;
            dn->a += incl;
            dn->self_a += self;
            if (s->parent == KL_FG_ROOT)
                d->total_a += incl;
        } else {
            dn->fb = s->frame;
            dn->b += incl;
            dn->self_b += self;
            if (s->parent == KL_FG_ROOT)
                d->total_b += incl;
        }
    }
    kl_arena_release(&a);
}

struct kl_fg_diff *kl_fg_diff_new(const struct kl_flamegraph *a, const struct kl_flamegraph *b,
                                  enum kl_fg_weight w)
{
    struct kl_fg_diff *d = kl_xcalloc(1, sizeof *d);
    d->weight = w;
    d->fa = a;
    d->fb = b;
    d->u = kl_flamegraph_new(NULL);
    diff_add_side(d, a, 0);
    diff_add_side(d, b, 1);
    return d;
}

void kl_fg_diff_free(struct kl_fg_diff *d)
{
    if (!d)
        return;
    kl_flamegraph_free(d->u);
    free(d->nodes);
    free(d);
}

uint32_t kl_fg_diff_n_nodes(const struct kl_fg_diff *d)
{
    return d->n_nodes;
}

void kl_fg_diff_totals(const struct kl_fg_diff *d, uint64_t *total_a, uint64_t *total_b)
{
    *total_a = d->total_a;
    *total_b = d->total_b;
}

void kl_fg_diff_node(const struct kl_fg_diff *d, uint32_t i, struct kl_fg_diff_node *out)
{
    const struct dnode *n = &d->nodes[i];
    const struct kl_fg_frame *f = &d->u->frames[d->u->nodes[i].frame].f;
    out->parent = n->parent;
    out->depth = n->depth;
    out->name = f->name;
    out->package = f->package;
    out->a = n->a;
    out->b = n->b;
    out->self_a = n->self_a;
    out->self_b = n->self_b;
    out->diff = (int64_t)(n->b - n->a);
    out->share_a = d->total_a ? (double)n->a / (double)d->total_a : 0;
    out->share_b = d->total_b ? (double)n->b / (double)d->total_b : 0;
    out->rel_change = out->share_a > 0 ? out->share_b / out->share_a - 1 : NAN;
}

int kl_fg_diff_write_json(const struct kl_fg_diff *d, struct kl_buf *out, struct kl_err *err)
{
    struct kl_arena a;
    kl_arena_init(&a);
    const struct kl_flamegraph *u = d->u;
    struct kids k;
    kids_build(&a, u->nodes, u->n_nodes, &k);
    uint32_t *order = kl_arena_alloc(&a, ((size_t)u->n_nodes + 1) * sizeof *order);
    dfs_order(&a, &k, u->n_nodes, order);
    uint32_t *pos = kl_arena_alloc(&a, ((size_t)u->n_nodes + 1) * sizeof *pos);
    for (uint32_t i = 0; i < u->n_nodes; i++)
        pos[order[i]] = i;
    struct kl_jw w;
    kl_jw_init(&w, out);
    kl_jw_obj_begin(&w);
    kl_jw_key(&w, "unit");
    kl_jw_cstr(&w, d->weight == KL_FG_WEIGHT_NS ? "nanoseconds" : "count");
    kl_jw_key(&w, "total_a");
    kl_jw_u64(&w, d->total_a);
    kl_jw_key(&w, "total_b");
    kl_jw_u64(&w, d->total_b);
    kl_jw_key(&w, "frames");
    kl_jw_arr_begin(&w);
    for (uint32_t i = 0; i < u->n_frames; i++) {
        const struct kl_fg_frame *f = &u->frames[i].f;
        kl_jw_obj_begin(&w);
        kl_jw_key(&w, "name");
        kl_jw_str(&w, nz(f->name));
        if (f->package.len) {
            kl_jw_key(&w, "image");
            kl_jw_str(&w, f->package);
        }
        kl_jw_key(&w, "is_application");
        kl_jw_bool(&w, (f->flags & KL_CFRAME_APPLICATION) != 0);
        kl_jw_obj_end(&w);
    }
    kl_jw_arr_end(&w);
    kl_jw_key(&w, "nodes");
    kl_jw_arr_begin(&w);
    for (uint32_t i = 0; i < u->n_nodes; i++) {
        uint32_t v = order[i];
        struct kl_fg_diff_node x;
        kl_fg_diff_node(d, v, &x);
        kl_jw_obj_begin(&w);
        kl_jw_key(&w, "frame");
        kl_jw_u64(&w, u->nodes[v].frame);
        kl_jw_key(&w, "parent");
        kl_jw_i64(&w, x.parent == KL_FG_ROOT ? -1 : (int64_t)pos[x.parent]);
        kl_jw_key(&w, "depth");
        kl_jw_u64(&w, x.depth);
        kl_jw_key(&w, "a");
        kl_jw_u64(&w, x.a);
        kl_jw_key(&w, "b");
        kl_jw_u64(&w, x.b);
        kl_jw_key(&w, "self_a");
        kl_jw_u64(&w, x.self_a);
        kl_jw_key(&w, "self_b");
        kl_jw_u64(&w, x.self_b);
        kl_jw_key(&w, "diff");
        kl_jw_i64(&w, x.diff);
        kl_jw_key(&w, "share_a");
        kl_jw_f64(&w, x.share_a);
        kl_jw_key(&w, "share_b");
        kl_jw_f64(&w, x.share_b);
        kl_jw_key(&w, "rel_change");
        if (isnan(x.rel_change))
            kl_jw_null(&w);
        else
            kl_jw_f64(&w, x.rel_change);
        kl_jw_obj_end(&w);
    }
    kl_jw_arr_end(&w);
    kl_jw_obj_end(&w);
    kl_arena_release(&a);
    return buf_result(out, err);
}

int kl_fg_diff_write_collapsed(const struct kl_fg_diff *d, struct kl_buf *out, struct kl_err *err)
{
    struct kl_arena a;
    kl_arena_init(&a);
    const struct kl_flamegraph *u = d->u;
    struct kids k;
    kids_build(&a, u->nodes, u->n_nodes, &k);
    uint32_t *order = kl_arena_alloc(&a, ((size_t)u->n_nodes + 1) * sizeof *order);
    dfs_order(&a, &k, u->n_nodes, order);
    uint32_t maxd = 0;
    for (uint32_t i = 0; i < u->n_nodes; i++)
        if (u->nodes[i].depth > maxd)
            maxd = u->nodes[i].depth;
    uint32_t *tmp = kl_arena_alloc(&a, ((size_t)maxd + 2) * sizeof *tmp);
    for (uint32_t i = 0; i < u->n_nodes && !kl_err_is_set(&out->err); i++) {
        const struct dnode *n = &d->nodes[order[i]];
        if (!n->self_a && !n->self_b)
            continue;
        put_stack(out, u, order[i], tmp);
        kl_buf_printf(out, " %" PRIu64 " %" PRIu64 "\n", n->self_a, n->self_b);
    }
    kl_arena_release(&a);
    return buf_result(out, err);
}

/* flamegraph.h - aggregated flamegraphs over many call trees, diffs, and their exports
 *
 * What: struct kl_flamegraph accumulates the call trees (calltree/calltree.h) of any number
 * of profiles and chunk slices into one merged tree, the way vroom's flamegraph endpoint does
 * (spec §8.3): nodes merge by (name, package) at each level and add occurrences, sample
 * counts, durations and self times; each frame keeps every node duration for exact
 * p75/p95/p99; examples say which profile contributed samples ending at a node; with metrics
 * on, the slowest functions are merged by fingerprint (§8.3 step 5, §6.4). Writers render
 * Sentry's aggregated speedscope JSON, collapsed stacks, a standalone SVG, and a diff of two
 * accumulators (JSON, collapsed "stack a b" lines, a red/blue SVG).
 *
 * Model:
 *   frames[]   global frames, one per distinct (name, package); strings copied into the
 *              accumulator's arena; each holds its node durations (one per tree node merged)
 *   nodes[]    merged nodes {parent, frame, occurrences, sample_count, duration, self};
 *              a parent is always created before its children, so id order is a valid
 *              pre-order for rebuilding and merging; children are kept in creation order
 *   node map   open addressing (parent id, frame id) -> node id; roots have parent ROOT
 *   examples[] {project_id, profile_id | profiler_id + chunk_id, transaction_id, thread_id,
 *              start, end}; each node lists the examples whose tree had samples ending
 *              there (sample_count > sum of children's), at most once per example, kept as
 *              one append-only log of (node, example) indexed by node when writing
 *   functions  fingerprint -> {self times, sum, count, worst example, <= 5 examples}
 *
 * Why: vroom merges pointer trees with a linear scan over siblings and copies whole branches;
 * here a tree is one linear pass over its flat pre-order nodes with a parent stack, the local
 * frame index is mapped to a global frame id once per tree (hash of name + package), and a
 * child is found with one hash probe keyed (parent, frame); the probes of a tree are issued
 * one depth level at a time with prefetches so their cache misses overlap (flamegraph.c).
 * That keeps the merge at tens of millions of nodes per second per core and makes merging
 * two accumulators (one per worker thread) the same operation as adding a tree.
 *
 * Ownership: kl_flamegraph_new allocates, kl_flamegraph_free releases everything. Trees and
 * examples passed to _add are only borrowed for the call (strings are copied). Results of
 * kl_flamegraph_frame_infos / _functions live in the arena given. Diffs (kl_fg_diff) borrow
 * both accumulators' strings: free the diff before the accumulators.
 * Invariants: every node's parent id < its id; frames' duration arrays hold exactly one
 * entry per merged tree node of that frame (sum of the frame's node occurrences).
 * Errors: KL_R_CALLTREE_CORRUPT (frame index out of range, depth jumping by more than one,
 * start > end), KL_R_CALLTREE_TOO_LARGE (more than KL_FG_MAX_NODES merged nodes or
 * KL_FG_MAX_EXAMPLES examples), and the output buffer's own errors. On an error in _add the
 * accumulator keeps what was merged before the bad node (callers discard it or go on).
 * Never logs.
 * Threads: an accumulator belongs to one thread; aggregate on N threads with N accumulators
 * and kl_flamegraph_merge them. Writers that compute percentiles reorder each frame's
 * duration array in place (hence non-const); do not share an accumulator while writing.
 * kl_flamegraph_write_speedscope runs the percentiles on a helper thread of its own while
 * it writes the samples (joined before it returns).
 * Limits: KL_FG_MAX_NODES, KL_FG_MAX_EXAMPLES, stack depth bounded by the trees' own.
 * Memory: the arrays that grow with the data live in their own mappings past 4 MB (mremap,
 * transparent huge pages); ~400 MB for 10k typical profiles with metrics.
 * Tests: tests/unit/test_flamegraph.c; benchmarks bench/bench_flamegraph.c (synthetic
 * trees) and bench/bench_read.c (a real store).
 */
#ifndef KL_AGGREGATE_FLAMEGRAPH_H
#define KL_AGGREGATE_FLAMEGRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"
#include "calltree/calltree.h"

#define KL_FG_MAX_NODES 200000000u   /* merged nodes (u32 ids, ~50 B each) */
#define KL_FG_MAX_EXAMPLES 50000000u /* examples (one per profile, chunk or chunk thread) */
#define KL_FG_SLICE_NS 10000000ull   /* 10 ms: a sliced node's samples are ceil(overlap/10ms) */
#define KL_FG_DEFAULT_FUNCTIONS 100  /* per profile and in the output, as vroom */
#define KL_FG_MAX_FUNCTION_EXAMPLES 5

struct kl_flamegraph;

struct kl_fg_options {
    bool metrics;                   /* collect function metrics (expand=metrics) */
    uint32_t max_examples_per_node; /* 0: unlimited, as vroom */
    uint32_t functions_per_profile; /* 0: KL_FG_DEFAULT_FUNCTIONS */
};

/* Where a tree came from; strings are copied. Unset strings (ptr NULL) are left out of the
 * output. start/end are unix ns and are written as seconds, as vroom does. */
struct kl_fg_example {
    uint64_t project_id;
    struct kl_str profile_id;                /* transaction profiles */
    struct kl_str profiler_id, chunk_id;     /* continuous chunks */
    struct kl_str transaction_id, thread_id; /* optional */
    int64_t start_ns, end_ns;
};

/* How to add one tree. */
struct kl_fg_add {
    enum kl_calltree_threads threads;      /* KL_CALLTREE_ACTIVE: threads with .active only */
    bool slice;                            /* keep only [slice_start_ns, slice_end_ns) */
    uint64_t slice_start_ns, slice_end_ns; /* relative to the tree's start, like node times */
    /* Chunks (profiler_id set, thread_id unset): one example per thread, carrying the
     * thread's id, and function metrics are extracted per thread (vroom); otherwise one
     * example and one function extraction for the whole tree. NULL: no example. */
    const struct kl_fg_example *example;
};

/* NULL opt: defaults (no metrics, unlimited examples). Never fails (aborts on OOM). */
struct kl_flamegraph *kl_flamegraph_new(const struct kl_fg_options *opt);
void kl_flamegraph_free(struct kl_flamegraph *fg);
/* A new, empty accumulator with fg's options (for a second thread to merge into fg). */
struct kl_flamegraph *kl_flamegraph_new_like(const struct kl_flamegraph *fg);

/* Merge one profile's trees. A sliced node keeps duration = overlap with the slice and
 * sample_count = min(ceil(overlap / 10 ms), original); nodes outside the slice and their
 * subtrees are dropped. 0, or -1 with *err. */
int kl_flamegraph_add(struct kl_flamegraph *fg, const struct kl_calltree *t,
                      const struct kl_fg_add *how, struct kl_err *err);

/* dst += src: the result equals adding src's trees to dst after dst's own, in order.
 * src is unchanged. Both must have the same options. 0, or -1 with *err (limits). */
int kl_flamegraph_merge(struct kl_flamegraph *dst, const struct kl_flamegraph *src,
                        struct kl_err *err);

/* ---- reading the merged tree (tests, API handlers) ---- */

#define KL_FG_ROOT UINT32_MAX /* parent of the roots */

struct kl_fg_node {
    uint32_t parent; /* node id, KL_FG_ROOT for roots */
    uint32_t frame;  /* frame id */
    uint32_t depth;
    uint32_t n_examples;
    uint64_t occurrences; /* tree nodes merged here */
    uint64_t sample_count;
    uint64_t duration_ns;
    uint64_t self_ns;
};

struct kl_fg_frame {
    struct kl_str name, package, path;
    uint32_t line;
    uint32_t flags;       /* enum kl_cframe_flags */
    uint32_t fingerprint; /* from the tree (FNV-1a of package ":" name) */
};

uint32_t kl_flamegraph_n_nodes(const struct kl_flamegraph *fg);
uint32_t kl_flamegraph_n_frames(const struct kl_flamegraph *fg);
uint32_t kl_flamegraph_n_examples(const struct kl_flamegraph *fg);
/* OUT: *out. i < n_nodes. */
void kl_flamegraph_node(const struct kl_flamegraph *fg, uint32_t i, struct kl_fg_node *out);
/* The j-th example id of node i (j < n_examples, in the order they were attached). Scans
 * the accumulator's attach log: for tests and spot checks, not for loops over nodes. */
uint32_t kl_flamegraph_node_example(const struct kl_flamegraph *fg, uint32_t i, uint32_t j);
const struct kl_fg_frame *kl_flamegraph_frame(const struct kl_flamegraph *fg, uint32_t i);
const struct kl_fg_example *kl_flamegraph_example(const struct kl_flamegraph *fg, uint32_t i);
/* The node at the path names[0] (root) .. names[n-1] with the given package (NULL: "")
 * for every level; KL_FG_ROOT when absent. */
uint32_t kl_flamegraph_find(const struct kl_flamegraph *fg, const char *const *names, uint32_t n,
                            const char *package);

/* Per-frame infos (§8.3 step 4), frame id order. Percentiles are nearest-rank over every
 * node duration of the frame: sorted d, index ceil(n * q) - 1. */
struct kl_fg_frame_info {
    uint64_t count;       /* occurrences */
    uint64_t weight;      /* sum of durations (vroom writes it as weight and sumDuration) */
    uint64_t sum_self_ns; /* sum of self times */
    uint64_t p75_ns, p95_ns, p99_ns;
};
/* OUT: *out (n_frames entries, in a). Reorders the frames' duration arrays. */
void kl_flamegraph_frame_infos(struct kl_flamegraph *fg, struct kl_arena *a,
                               struct kl_fg_frame_info **out);

/* Function metrics (§8.3 step 5). */
struct kl_fg_function {
    struct kl_str name, package;
    uint32_t fingerprint;
    bool in_app;
    uint64_t p75_ns, p95_ns, p99_ns; /* nearest rank over the self times */
    double avg_ns;                   /* sum / number of self times */
    uint64_t sum_ns;                 /* total self time */
    uint64_t count;                  /* sample count */
    uint32_t worst;                  /* example id: the profile with the largest self time sum */
    uint32_t examples[KL_FG_MAX_FUNCTION_EXAMPLES];
    uint32_t n_examples;
};
/* The top max_n (0: 100) functions by total self time, descending (ties: fingerprint
 * ascending). OUT: *out in a, *n_out. Empty unless created with metrics on. */
void kl_flamegraph_functions(struct kl_flamegraph *fg, struct kl_arena *a, uint32_t max_n,
                             struct kl_fg_function **out, uint32_t *n_out);

/* ---- writers ---- */

enum kl_fg_weight {
    KL_FG_WEIGHT_SAMPLES = 0, /* sample counts */
    KL_FG_WEIGHT_NS = 1,      /* durations */
};

struct kl_fg_speedscope_opts {
    uint32_t max_samples;   /* 0: every sample (vroom keeps the 1000 largest) */
    bool metrics;           /* write "metrics" (needs an accumulator with metrics on) */
    uint32_t max_functions; /* 0: 100 */
    uint64_t project_id;    /* metadata.projectID and projectID (vroom: 0) */
};
/* Sentry's aggregated speedscope document:
 *   {activeProfileIndex:0, metadata:{projectID}, platform:"", projectID,
 *    profiles:[{type:"sampled", unit:"count", name:"", isMainThread:true, startValue:0,
 *               endValue, samples:[[frame...]], samples_examples:[[example...]],
 *               weights, sample_counts, sample_durations_ns}],
 *    shared:{frames:[{name, image?, path?, file?, line?, is_application, fingerprint}],
 *            frame_infos:[{count, weight, sumDuration, sumSelfTime, p75Duration,
 *                          p95Duration, p99Duration}],
 *            profiles:[examples]},
 *    transactionName:"", metrics?:[{name, package, fingerprint, in_app, p75, p95, p99, avg,
 *                                   sum, count, worst, examples}]}
 * Samples: one per leaf (its count and duration) and one per inner node whose sample
 * count exceeds its children's (the differences), children before parents; frames numbered
 * in depth-first order of first visit. */
int kl_flamegraph_write_speedscope(struct kl_flamegraph *fg, const struct kl_fg_speedscope_opts *o,
                                   struct kl_buf *out, struct kl_err *err);

/* Collapsed stacks: one "root;...;leaf weight" line per node with a positive self weight
 * (samples: sample_count minus the children's; ns: self time), depth-first, children in
 * creation order. Names: the function name ("unknown" if empty) with ';' and line breaks
 * replaced by '_'. */
int kl_flamegraph_write_collapsed(const struct kl_flamegraph *fg, enum kl_fg_weight w,
                                  struct kl_buf *out, struct kl_err *err);

struct kl_fg_svg_opts {
    const char *title; /* NULL: "Flame Graph" */
    enum kl_fg_weight weight;
    uint32_t width_px;   /* 0: 1200 */
    double min_width_px; /* frames narrower are not drawn; 0: 0.1 */
};
/* A self-contained SVG (inline script and style): root at the bottom, widths by inclusive
 * weight, tooltip per frame, click to zoom, "Reset Zoom", "Search" (a regular expression;
 * matches are highlighted and the matched share of the total is shown; Ctrl-F opens it). */
int kl_flamegraph_write_svg(const struct kl_flamegraph *fg, const struct kl_fg_svg_opts *o,
                            struct kl_buf *out, struct kl_err *err);

/* ---- differential flamegraphs ---- */

/* The union of two merged trees by frame path, with each side's weights. */
struct kl_fg_diff;

struct kl_fg_diff_node {
    uint32_t parent; /* diff node id, KL_FG_ROOT for roots */
    uint32_t depth;
    struct kl_str name, package;
    uint64_t a, b;           /* inclusive weight on each side (0 if absent) */
    uint64_t self_a, self_b; /* self weight */
    int64_t diff;            /* b - a */
    double share_a, share_b; /* a / total_a, b / total_b (0 when a total is 0) */
    double rel_change;       /* share_b / share_a - 1; NaN when share_a is 0 */
};

/* Build the diff of a ("before", e.g. release A or last week) and b ("after"). Never fails
 * (aborts on OOM). Free with kl_fg_diff_free before freeing a or b. */
struct kl_fg_diff *kl_fg_diff_new(const struct kl_flamegraph *a, const struct kl_flamegraph *b,
                                  enum kl_fg_weight w);
void kl_fg_diff_free(struct kl_fg_diff *d);
uint32_t kl_fg_diff_n_nodes(const struct kl_fg_diff *d);
void kl_fg_diff_totals(const struct kl_fg_diff *d, uint64_t *total_a, uint64_t *total_b);
/* OUT: *out. Nodes are in pre-order-compatible id order (parent before child). */
void kl_fg_diff_node(const struct kl_fg_diff *d, uint32_t i, struct kl_fg_diff_node *out);

/* {"unit":"count"|"nanoseconds", "total_a", "total_b",
 *  "frames":[{name, image?, is_application}],
 *  "nodes":[{frame, parent (-1 for roots), depth, a, b, self_a, self_b, diff, share_a,
 *            share_b, rel_change (null when a is 0)}]} in depth-first order. */
int kl_fg_diff_write_json(const struct kl_fg_diff *d, struct kl_buf *out, struct kl_err *err);
/* "root;...;leaf self_a self_b" per node with a positive self weight on either side
 * (Brendan Gregg's difffolded input). */
int kl_fg_diff_write_collapsed(const struct kl_fg_diff *d, struct kl_buf *out, struct kl_err *err);
/* Differential SVG: widths by b's weights (by a's when widths_by_a), colour by the change
 * of each frame's share of its side's total: red grew (slower), blue shrank (faster),
 * white unchanged; same search and zoom as kl_flamegraph_write_svg. */
int kl_fg_diff_write_svg(const struct kl_fg_diff *d, const struct kl_fg_svg_opts *o,
                         bool widths_by_a, struct kl_buf *out, struct kl_err *err);

#endif

/* occurrence.c - frame-job and frame-drop detection, occurrence building and JSON
 *
 * See occurrence.h for the rules. Both walks run over a thread's flat pre-order node range
 * with an explicit ancestor stack, finishing a node (post-order) when the walk leaves it.
 */
#include "occurrence/occurrence.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/time.h"
#include "json/json.h"
#include "normalize/normalize.h"
#include "occurrence/occurrence_int.h"

/* Frame-drop thresholds (vroomrs frame_drop.rs). */
#define DROP_MARGIN_FRACTION 0.05
#define DROP_MIN_MARGIN_NS 10000000.0
#define DROP_MIN_DURATION_FRACTION 0.5
#define DROP_START_LIMIT_FRACTION 0.2
#define DROP_UNNAMED_FRACTION 0.8

#define NO_MATCH 0xff

/* Findings collected before they are copied into the arena. */
struct occ_list {
    struct kl_occurrence *items;
    uint32_t len, cap;
};

struct ctx {
    struct kl_arena *a;
    const struct kl_profile *p;
    const struct kl_calltree *t;
    bool android;
    uint64_t profile_duration_ns;
    struct occ_list out;
    uint32_t *path; /* scratch: node indices root -> suspect */
    size_t path_cap;
};

static struct kl_occurrence *occ_push(struct occ_list *l)
{
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = kl_xrealloc(l->items, (size_t)l->cap * sizeof *l->items);
    }
    struct kl_occurrence *o = &l->items[l->len++];
    memset(o, 0, sizeof *o);
    return o;
}

/* ---- thread selection ---- */

static bool id_is(struct kl_str id, uint64_t v)
{
    uint64_t x;
    return kl_parse_u64(id, &x) && x == v;
}

/* The transaction's active thread: by id for v1 profiles, else the tree's own flag (the
 * Android tree holds only the main thread, which is the active one). */
static bool is_active_thread(const struct kl_profile *p, const struct kl_cthread *th)
{
    if (p->kind == KL_KIND_SAMPLE_V1 && p->transaction.present)
        return id_is(th->id, p->transaction.active_thread_id);
    return th->active;
}

/* vroomrs's main thread: cocoa only, the first thread_metadata entry named "main" whose id
 * is a number. false when there is none (no fallback to the active thread). */
static bool main_thread_id(const struct kl_profile *p, uint64_t *id)
{
    if (!kl_str_eq_c(p->platform, "cocoa"))
        return false;
    for (size_t i = 0; i < p->data.threads.len; i++) {
        const struct kl_thread *th = &p->data.threads.items[i];
        if (th->name.ptr && kl_str_eq_c(th->name, "main") && kl_parse_u64(th->id, id))
            return true;
    }
    return false;
}

static bool thread_selected(const struct kl_profile *p, const struct kl_cthread *th, unsigned mode,
                            bool has_main, uint64_t main_id)
{
    switch (mode) {
    case KL__OCC_ACTIVE_THREAD:
        return is_active_thread(p, th);
    case KL__OCC_MAIN_THREAD:
        return has_main && id_is(th->id, main_id);
    default:
        return true;
    }
}

/* ---- helpers ---- */

static uint64_t node_duration(const struct kl_cnode *n)
{
    return n->end_ns > n->start_ns ? n->end_ns - n->start_ns : 0;
}

/* Rust's `f64 as u64`: NaN and negatives give 0, too large gives the maximum. */
static uint64_t sat_u64(double v)
{
    if (!(v > 0))
        return 0;
    if (v >= 18446744073709551615.0)
        return UINT64_MAX;
    return (uint64_t)v;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Android names are "package.Class.method(...)": drop "package." when present. */
static struct kl_str strip_package(struct kl_str name, struct kl_str package)
{
    if (name.len > package.len && name.ptr[package.len] == '.' &&
        (package.len == 0 || memcmp(name.ptr, package.ptr, package.len) == 0))
        return kl_str_make(name.ptr + package.len + 1, name.len - package.len - 1);
    return name;
}

static struct kl_str arena_str(struct kl_arena *a, const char *s, size_t n)
{
    return kl_str_make(kl_arena_strndup(a, s, n), n);
}

size_t kl_occurrence_fmt_duration(uint64_t ns, char *buf)
{
    /* round to the nearest 10 µs, halves away from zero */
    uint64_t q = ns / 10000, r = ns % 10000;
    if (r >= 5000)
        q++;
    ns = q * 10000;

    uint64_t whole, frac, div;
    const char *unit;
    if (ns >= 1000000000ULL) {
        whole = ns / 1000000000ULL;
        frac = ns % 1000000000ULL;
        div = 100000000ULL;
        unit = "s";
    } else if (ns >= 1000000ULL) {
        whole = ns / 1000000ULL;
        frac = ns % 1000000ULL;
        div = 100000ULL;
        unit = "ms";
    } else if (ns >= 1000ULL) {
        whole = ns / 1000ULL;
        frac = ns % 1000ULL;
        div = 100ULL;
        unit = "\xc2\xb5s";
    } else {
        whole = ns;
        frac = 0;
        div = 1;
        unit = "ns";
    }
    char digits[12];
    size_t nd = 0;
    while (frac > 0 && div > 0) {
        digits[nd++] = (char)('0' + frac / div);
        frac %= div;
        div /= 10;
    }
    int len;
    if (nd)
        len = snprintf(buf, 41, "%llu.%.*s%s", (unsigned long long)whole, (int)nd, digits, unit);
    else
        len = snprintf(buf, 41, "%llu%s", (unsigned long long)whole, unit);
    return len < 0 ? 0 : (size_t)len;
}

/* The frame's raw module and package for evidence_data: Sentry reports frame.module and
 * frame.package, which the call tree folds into module_or_package. */
static void raw_module_package(const struct ctx *c, struct kl_str name, struct kl_str package,
                               struct kl_str *module_out, struct kl_str *package_out)
{
    *module_out = KL_STR("");
    *package_out = package;
    const kl_vec_frame *fr = &c->p->data.frames;
    for (size_t i = 0; i < fr->len; i++) {
        const struct kl_frame *f = &fr->items[i];
        if (!kl_str_eq(f->function, name) || !kl_str_eq(kl_frame_module_or_package(f), package))
            continue;
        *module_out = f->module.ptr ? f->module : KL_STR("");
        *package_out = f->package.ptr ? f->package : KL_STR("");
        return;
    }
}

/* ---- building one occurrence ---- */

static void build(struct ctx *c, unsigned category, uint32_t thread, uint32_t node,
                  const uint32_t *path, uint32_t n_path)
{
    const struct kl_calltree *t = c->t;
    const struct kl_profile *p = c->p;
    const struct kl__occ_category_info *ci = &kl__occ_categories[category];
    const struct kl_cnode *nd = &t->nodes[node];
    const struct kl_cframe *fr = &t->frames[nd->frame];
    bool drop = category == KL__OCC_FRAME_DROP;
    struct kl_occurrence *o = occ_push(&c->out);

    o->type = ci->type;
    o->category = ci->name;
    o->title = ci->title;
    o->thread = thread;
    o->node = node;
    o->package = fr->package.ptr ? fr->package : KL_STR("");
    struct kl_str raw_name = fr->name.ptr ? fr->name : KL_STR("");
    o->frame_name = c->android ? strip_package(raw_name, o->package) : raw_name;
    o->subtitle = o->frame_name;
    o->culprit = p->transaction.name.ptr ? p->transaction.name : KL_STR("");
    o->duration_ns = node_duration(nd);
    o->sample_count = nd->sample_count;
    o->profile_duration_ns = c->profile_duration_ns;
    o->percentage = (double)o->duration_ns * 100.0 / (double)c->profile_duration_ns;
    o->detection_time_ns = kl_now_ns();
    o->evidence_sample_count = c->android && !drop;
    raw_module_package(c, raw_name, o->package, &o->frame_module, &o->frame_package);

    struct kl_uuid u;
    kl_uuid_v4(&u);
    kl_uuid_hex(&u, o->id);
    kl_uuid_v4(&u);
    kl_uuid_hex(&u, o->event_id);

    char num[24];
    struct kl__md5 m;
    kl__md5_init(&m);
    int k = snprintf(num, sizeof num, "%llu", (unsigned long long)p->project_id);
    kl__md5_update(&m, num, (size_t)k);
    kl__md5_update(&m, ci->title, strlen(ci->title));
    k = snprintf(num, sizeof num, "%u", ci->type);
    kl__md5_update(&m, num, (size_t)k);
    kl__md5_update(&m, o->package.ptr, o->package.len);
    kl__md5_update(&m, o->frame_name.ptr, o->frame_name.len);
    kl__md5_hex(&m, o->fingerprint);

    o->stack = kl_arena_calloc(c->a, n_path ? n_path : 1, sizeof *o->stack);
    o->n_stack = n_path;
    for (uint32_t i = 0; i < n_path; i++) {
        const struct kl_cframe *f = &t->frames[t->nodes[path[i]].frame];
        struct kl_occurrence_frame *sf = &o->stack[i];
        sf->package = f->package;
        sf->function = c->android && f->name.ptr && f->package.ptr
                           ? strip_package(f->name, f->package)
                           : f->name;
        sf->path = f->path;
        sf->line = f->line;
        sf->in_app = f->flags & KL_CFRAME_APPLICATION;
    }

    o->evidence_display[0] =
        (struct kl_occurrence_evidence){"Suspect function", o->frame_name, true};
    o->evidence_display[1] = (struct kl_occurrence_evidence){"Package", o->package, false};
    o->n_evidence_display = 2;
    if (!drop) {
        char dur[48], text[160], pct[48];
        kl_occurrence_fmt_duration(o->duration_ns, dur);
        if (isnan(o->percentage))
            snprintf(pct, sizeof pct, "NaN");
        else
            snprintf(pct, sizeof pct, "%.2f", o->percentage);
        int len;
        if (c->android)
            len = snprintf(text, sizeof text, "%s (%s%% of the profile)", dur, pct);
        else
            len = snprintf(text, sizeof text, "%s (%s%% of the profile, found in %llu samples)",
                           dur, pct, (unsigned long long)o->sample_count);
        if (len < 0)
            len = 0;
        if ((size_t)len >= sizeof text)
            len = (int)sizeof text - 1;
        o->evidence_display[2] =
            (struct kl_occurrence_evidence){"Duration", arena_str(c->a, text, (size_t)len), false};
        o->n_evidence_display = 3;
    }
}

static void path_reserve(struct ctx *c, size_t n)
{
    if (n > c->path_cap) {
        c->path_cap = n < 64 ? 64 : n * 2;
        c->path = kl_xrealloc(c->path, c->path_cap * sizeof *c->path);
    }
}

/* ---- frame jobs ---- */

struct anc {
    uint32_t node;
    bool found; /* a descendant matched: later children are not searched */
};

/* Each job's rules in an open-addressing table keyed by a hash of (package, function),
 * built once: a frame costs one probe instead of a strlen and compare per rule (the cocoa
 * job has about a hundred rules; matching was 3.5% of a worker's time per profile). */
#define RULE_SLOTS (2 * KL__OCC_MAX_RULES_PER_JOB) /* a power of two */

struct rule_index {
    uint16_t slot[RULE_SLOTS]; /* rule index + 1; 0 = empty */
    uint32_t len[RULE_SLOTS];  /* per rule: package length << 16 | function length */
};

static struct rule_index *rule_indexes; /* one per job */
static pthread_once_t rule_index_once = PTHREAD_ONCE_INIT;

static uint64_t rule_hash(struct kl_str pkg, struct kl_str fn)
{
    uint64_t h = kl_fnv1a64(pkg.ptr, pkg.len);
    h = kl_fnv1a64_update(h ^ 0xff, fn.ptr, fn.len);
    return h ^ (h >> 29);
}

static void build_rule_indexes(void)
{
    rule_indexes = kl_xmalloc(kl__occ_n_jobs * sizeof *rule_indexes);
    for (uint32_t j = 0; j < kl__occ_n_jobs; j++) {
        struct rule_index *x = &rule_indexes[j];
        const struct kl__occ_job *job = &kl__occ_jobs[j];
        memset(x->slot, 0, sizeof x->slot);
        for (uint32_t r = 0; r < job->n_rules; r++) {
            struct kl_str pkg = kl_str_c(job->rules[r].package);
            struct kl_str fn = kl_str_c(job->rules[r].function);
            x->len[r] = (uint32_t)(pkg.len << 16 | fn.len);
            size_t i = rule_hash(pkg, fn) & (RULE_SLOTS - 1);
            while (x->slot[i])
                i = (i + 1) & (RULE_SLOTS - 1);
            x->slot[i] = (uint16_t)(r + 1);
        }
    }
}

/* The category each distinct frame matches in this job, NO_MATCH otherwise (the first rule
 * in table order wins, as a linear scan would). */
static uint8_t *match_frames(const struct kl_calltree *t, const struct kl__occ_job *job)
{
    pthread_once(&rule_index_once, build_rule_indexes);
    const struct rule_index *x = &rule_indexes[job - kl__occ_jobs];
    uint8_t *cat = kl_xmalloc(t->n_frames ? t->n_frames : 1);
    for (uint32_t i = 0; i < t->n_frames; i++) {
        const struct kl_cframe *f = &t->frames[i];
        struct kl_str name = f->name.ptr ? f->name : KL_STR("");
        struct kl_str pkg = f->package.ptr ? f->package : KL_STR("");
        if (job->strip_signature) {
            const char *paren = name.len ? memchr(name.ptr, '(', name.len) : NULL;
            if (paren)
                name.len = (size_t)(paren - name.ptr);
        }
        cat[i] = NO_MATCH;
        uint32_t best = UINT32_MAX;
        for (size_t k = rule_hash(pkg, name) & (RULE_SLOTS - 1); x->slot[k];
             k = (k + 1) & (RULE_SLOTS - 1)) {
            uint32_t r = x->slot[k] - 1u;
            const struct kl__occ_rule *rule = &job->rules[r];
            if (r < best && x->len[r] == (uint32_t)(pkg.len << 16 | name.len) &&
                (pkg.len == 0 || memcmp(pkg.ptr, rule->package, pkg.len) == 0) &&
                (name.len == 0 || memcmp(name.ptr, rule->function, name.len) == 0))
                best = r;
        }
        if (best != UINT32_MAX)
            cat[i] = job->rules[best].category;
    }
    return cat;
}

/* Whether this job already holds a finding for the node's (package, function). */
static bool job_has_key(const struct ctx *c, uint32_t job_start, const struct kl_cframe *f)
{
    for (uint32_t i = job_start; i < c->out.len; i++) {
        const struct kl_cframe *g = &c->t->frames[c->t->nodes[c->out.items[i].node].frame];
        if (kl_str_eq(f->package, g->package) && kl_str_eq(f->name, g->name))
            return true;
    }
    return false;
}

/* Leave node anc[top]: check it unless a descendant matched, record a new key, and tell
 * the parent when anything in this subtree matched. */
static void finish_job_node(struct ctx *c, const struct kl__occ_job *job, const uint8_t *cat,
                            struct anc *anc, uint32_t top, uint32_t thread, uint32_t job_start)
{
    const struct kl_cnode *n = &c->t->nodes[anc[top].node];
    bool matched = anc[top].found;
    if (!matched && cat[n->frame] != NO_MATCH && node_duration(n) >= job->min_duration_ns &&
        n->sample_count >= job->min_samples) {
        matched = true;
        if (!job_has_key(c, job_start, &c->t->frames[n->frame])) {
            path_reserve(c, (size_t)top + 1);
            for (uint32_t i = 0; i <= top; i++)
                c->path[i] = anc[i].node;
            build(c, cat[n->frame], thread, anc[top].node, c->path, top + 1);
        }
    }
    if (matched && top > 0)
        anc[top - 1].found = true;
}

static void run_job_on_thread(struct ctx *c, const struct kl__occ_job *job, const uint8_t *cat,
                              uint32_t thread, uint32_t job_start)
{
    const struct kl_cthread *th = &c->t->threads[thread];
    const struct kl_cnode *nodes = c->t->nodes;
    uint32_t end = th->first_node + th->n_nodes;
    struct anc *anc = NULL;
    size_t cap = 0;
    uint32_t len = 0;

    for (uint32_t i = th->first_node; i < end;) {
        uint32_t d = nodes[i].depth;
        while (len > 0 && len > d) {
            finish_job_node(c, job, cat, anc, len - 1, thread, job_start);
            len--;
        }
        if (len > 0 && anc[len - 1].found) {
            /* the parent already has a match: its remaining children are not searched */
            i++;
            while (i < end && nodes[i].depth > d)
                i++;
            continue;
        }
        if (len == cap) {
            cap = cap ? cap * 2 : 64;
            anc = kl_xrealloc(anc, cap * sizeof *anc);
        }
        anc[len++] = (struct anc){i, false};
        i++;
    }
    while (len > 0) {
        finish_job_node(c, job, cat, anc, len - 1, thread, job_start);
        len--;
    }
    free(anc);
}

static void run_job(struct ctx *c, const struct kl__occ_job *job)
{
    uint64_t main_id = 0;
    bool has_main = main_thread_id(c->p, &main_id);
    if (job->thread == KL__OCC_MAIN_THREAD && !has_main)
        return;
    uint8_t *cat = match_frames(c->t, job);
    uint32_t job_start = c->out.len;
    for (uint32_t i = 0; i < c->t->n_threads; i++)
        if (thread_selected(c->p, &c->t->threads[i], job->thread, has_main, main_id))
            run_job_on_thread(c, job, cat, i, job_start);
    free(cat);
}

/* ---- frame drop ---- */

struct drop_window {
    uint64_t start_ns, end_ns, start_limit_ns, min_duration_ns;
};

static struct drop_window drop_window(uint64_t end_ns, double duration_ns)
{
    struct drop_window w;
    double m = duration_ns * DROP_MARGIN_FRACTION;
    if (!(m >= DROP_MIN_MARGIN_NS))
        m = DROP_MIN_MARGIN_NS;
    uint64_t margin = sat_u64(m);
    uint64_t dur = sat_u64(duration_ns);
    w.end_ns = add_sat(end_ns, margin);
    w.min_duration_ns = sat_u64(duration_ns * DROP_MIN_DURATION_FRACTION);
    uint64_t back = add_sat(dur, margin);
    w.start_ns = end_ns >= back ? end_ns - back : 0;
    w.start_limit_ns = add_sat(w.start_ns, sat_u64(duration_ns * DROP_START_LIMIT_FRACTION));
    return w;
}

static bool drop_candidate(const struct kl_calltree *t, const struct kl_cnode *n,
                           const struct drop_window *w)
{
    const struct kl_cframe *f = &t->frames[n->frame];
    return f->name.len > 0 && (f->flags & KL_CFRAME_APPLICATION) && n->start_ns >= w->start_ns &&
           n->end_ns <= w->end_ns && node_duration(n) >= w->min_duration_ns &&
           n->start_ns <= w->start_limit_ns;
}

struct best {
    uint32_t node; /* UINT32_MAX: none */
    uint64_t duration_ns;
    uint32_t depth;
};

struct drop_anc {
    uint32_t node;
    struct best best; /* best candidate among finished children */
};

/* Leave anc[top]: the subtree's answer is the best child unless the node itself is valid
 * and strictly longer; hand it to the parent, which keeps the longer (ties: deeper). */
static struct best finish_drop_node(const struct kl_calltree *t, const struct drop_window *w,
                                    struct drop_anc *anc, uint32_t top)
{
    struct best b = anc[top].best;
    const struct kl_cnode *n = &t->nodes[anc[top].node];
    if (drop_candidate(t, n, w) && (b.node == UINT32_MAX || b.duration_ns < node_duration(n)))
        b = (struct best){anc[top].node, node_duration(n), n->depth};
    if (top > 0 && b.node != UINT32_MAX) {
        struct best *pb = &anc[top - 1].best;
        if (pb->node == UINT32_MAX || b.duration_ns > pb->duration_ns ||
            (b.duration_ns == pb->duration_ns && b.depth > pb->depth))
            *pb = b;
    }
    return b;
}

/* The cause within the tree rooted at nodes[root .. root_end). */
static struct best drop_cause(const struct kl_calltree *t, const struct drop_window *w,
                              uint32_t root, uint32_t root_end, struct drop_anc **anc_p,
                              size_t *cap)
{
    struct drop_anc *anc = *anc_p;
    uint32_t len = 0;
    struct best b = {UINT32_MAX, 0, 0};
    for (uint32_t i = root; i < root_end; i++) {
        uint32_t d = t->nodes[i].depth;
        while (len > 0 && len > d) {
            finish_drop_node(t, w, anc, len - 1);
            len--;
        }
        if (len == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            anc = kl_xrealloc(anc, *cap * sizeof *anc);
        }
        anc[len++] = (struct drop_anc){i, {UINT32_MAX, 0, 0}};
    }
    while (len > 0) {
        b = finish_drop_node(t, w, anc, len - 1);
        len--;
    }
    *anc_p = anc;
    return b;
}

/* Root -> node indices of node k (scanning back for each shallower ancestor). */
static uint32_t node_path(struct ctx *c, uint32_t first, uint32_t k)
{
    uint32_t depth = c->t->nodes[k].depth;
    path_reserve(c, (size_t)depth + 1);
    uint32_t n = 0;
    c->path[depth] = k;
    n++;
    uint32_t want = depth;
    for (uint32_t i = k; i > first && want > 0;) {
        i--;
        if (c->t->nodes[i].depth == want - 1) {
            want--;
            c->path[want] = i;
            n++;
        }
    }
    if (want > 0) { /* a malformed tree: keep what was found */
        memmove(c->path, c->path + want, (size_t)n * sizeof *c->path);
    }
    return n;
}

static void frame_drops(struct ctx *c)
{
    const struct kl_profile *p = c->p;
    const struct kl_calltree *t = c->t;
    const struct kl_measurement *ms = NULL;
    for (size_t i = 0; i < p->measurements.len; i++)
        if (kl_str_eq_c(p->measurements.items[i].name, "frozen_frame_renders"))
            ms = &p->measurements.items[i];
    if (!ms)
        return;
    uint32_t thread = UINT32_MAX;
    for (uint32_t i = 0; i < t->n_threads && thread == UINT32_MAX; i++)
        if (is_active_thread(p, &t->threads[i]))
            thread = i;
    if (thread == UINT32_MAX)
        return;
    const struct kl_cthread *th = &t->threads[thread];
    uint32_t end = th->first_node + th->n_nodes;
    struct drop_anc *anc = NULL;
    size_t cap = 0;

    for (size_t v = 0; v < ms->n; v++) {
        struct drop_window w = drop_window(ms->values[v].t_ns, ms->values[v].value);
        for (uint32_t r = th->first_node; r < end;) {
            uint32_t r_end = r + 1;
            while (r_end < end && t->nodes[r_end].depth > t->nodes[r].depth)
                r_end++;
            struct best b = drop_cause(t, &w, r, r_end, &anc, &cap);
            if (b.node != UINT32_MAX) {
                uint32_t n = node_path(c, r, b.node);
                uint32_t unnamed = 0;
                for (uint32_t i = 0; i < n; i++)
                    if (t->frames[t->nodes[c->path[i]].frame].name.len == 0)
                        unnamed++;
                if (!((double)unnamed >= (double)n * DROP_UNNAMED_FRACTION)) {
                    build(c, KL__OCC_FRAME_DROP, thread, b.node, c->path, n);
                    break;
                }
            }
            r = r_end;
        }
    }
    free(anc);
}

/* ---- entry points ---- */

int kl_occurrences_detect_ex(struct kl_arena *a, const struct kl_profile *p,
                             const struct kl_calltree *t, unsigned flags,
                             struct kl_occurrence **out, uint32_t *n, struct kl_err *err)
{
    (void)err;
    *out = NULL;
    *n = 0;
    if (!t || kl_profile_is_chunk(p) || !p->sampled)
        return 0;

    struct ctx c = {.a = a, .p = p, .t = t};
    c.android = kl_str_eq_c(p->platform, "android");
    c.profile_duration_ns = t->duration_ns ? t->duration_ns : p->duration_ns;

    for (uint32_t j = 0; j < kl__occ_n_jobs; j++)
        if (kl_str_eq_c(p->platform, kl__occ_jobs[j].platform))
            run_job(&c, &kl__occ_jobs[j]);
    frame_drops(&c);

    uint32_t kept = 0;
    for (uint32_t i = 0; i < c.out.len; i++)
        if (c.out.items[i].type != KL_OCC_TYPE_NONE || (flags & KL_OCC_KEEP_UNTYPED))
            kept++;
    if (kept) {
        struct kl_occurrence *res = kl_arena_alloc(a, (size_t)kept * sizeof *res);
        uint32_t k = 0;
        for (uint32_t i = 0; i < c.out.len; i++)
            if (c.out.items[i].type != KL_OCC_TYPE_NONE || (flags & KL_OCC_KEEP_UNTYPED))
                res[k++] = c.out.items[i];
        *out = res;
        *n = kept;
    }
    free(c.out.items);
    free(c.path);
    return 0;
}

int kl_occurrences_detect(struct kl_arena *a, const struct kl_profile *p,
                          const struct kl_calltree *t, struct kl_occurrence **out, uint32_t *n,
                          struct kl_err *err)
{
    return kl_occurrences_detect_ex(a, p, t, 0, out, n, err);
}

/* ---- JSON ---- */

static void key_str(struct kl_jw *w, const char *k, struct kl_str s)
{
    kl_jw_key(w, k);
    kl_jw_str(w, s.ptr ? s : KL_STR(""));
}

static void key_u64(struct kl_jw *w, const char *k, uint64_t v)
{
    kl_jw_key(w, k);
    kl_jw_u64(w, v);
}

static void key_time(struct kl_jw *w, const char *k, int64_t ns)
{
    char tmp[48];
    size_t n = kl_rfc3339_format(ns, tmp);
    key_str(w, k, kl_str_make(tmp, n));
}

static void key_hex(struct kl_jw *w, const char *k, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "0x%llx", (unsigned long long)v);
    key_str(w, k, kl_str_make(tmp, (size_t)n));
}

static void write_debug_meta(struct kl_jw *w, const struct kl_profile *p)
{
    kl_jw_key(w, "debug_meta");
    kl_jw_obj_begin(w);
    if (p->images.len) {
        kl_jw_key(w, "images");
        kl_jw_arr_begin(w);
        for (size_t i = 0; i < p->images.len; i++) {
            const struct kl_image *im = &p->images.items[i];
            kl_jw_obj_begin(w);
            if (im->arch.ptr)
                key_str(w, "arch", im->arch);
            if (im->code_file.ptr)
                key_str(w, "code_file", im->code_file);
            if (im->debug_id.ptr)
                key_str(w, "debug_id", im->debug_id);
            if (im->debug_file.ptr)
                key_str(w, "debug_file", im->debug_file);
            if (im->has_image_addr)
                key_hex(w, "image_addr", im->image_addr);
            if (im->has_image_size)
                key_u64(w, "image_size", im->image_size);
            if (im->has_image_vmaddr)
                key_hex(w, "image_vmaddr", im->image_vmaddr);
            if (im->type.ptr)
                key_str(w, "type", im->type);
            if (im->uuid.ptr)
                key_str(w, "uuid", im->uuid);
            kl_jw_obj_end(w);
        }
        kl_jw_arr_end(w);
    }
    kl_jw_obj_end(w);
}

static void write_event(struct kl_jw *w, const struct kl_occurrence *o, const struct kl_profile *p)
{
    kl_jw_key(w, "event");
    kl_jw_obj_begin(w);
    write_debug_meta(w, p);
    key_str(w, "environment", p->environment);
    key_str(w, "event_id", kl_str_c(o->event_id));
    key_str(w, "platform", kl_str_eq_c(p->platform, "android") ? KL_STR("java") : p->platform);
    key_u64(w, "project_id", p->project_id);
    key_time(w, "received", p->received * 1000000000LL);
    kl_jw_key(w, "release");
    if (p->release.ptr)
        kl_jw_str(w, p->release);
    else
        kl_jw_null(w);
    kl_jw_key(w, "stacktrace");
    kl_jw_obj_begin(w);
    kl_jw_key(w, "frames");
    kl_jw_arr_begin(w);
    for (uint32_t i = 0; i < o->n_stack; i++) {
        const struct kl_occurrence_frame *f = &o->stack[i];
        kl_jw_obj_begin(w);
        if (f->function.ptr)
            key_str(w, "function", f->function);
        kl_jw_key(w, "in_app");
        kl_jw_bool(w, f->in_app);
        if (f->line)
            key_u64(w, "lineno", f->line);
        if (f->package.ptr && f->package.len)
            key_str(w, "package", f->package);
        if (f->path.ptr && f->path.len)
            key_str(w, "abs_path", f->path);
        kl_jw_obj_end(w);
    }
    kl_jw_arr_end(w);
    kl_jw_obj_end(w);
    kl_jw_key(w, "tags");
    kl_jw_obj_begin(w);
    for (size_t i = 0; i < p->tx_tags.len; i++) {
        kl_jw_key_str(w, p->tx_tags.items[i].key);
        kl_jw_str(w, p->tx_tags.items[i].value);
    }
    kl_jw_obj_end(w);
    key_time(w, "timestamp", p->has_timestamp ? p->timestamp_ns : p->received * 1000000000LL);
    kl_jw_obj_end(w);
}

int kl_occurrence_write_json(const struct kl_occurrence *o, const struct kl_profile *p,
                             struct kl_buf *out)
{
    struct kl_jw w;
    kl_jw_init(&w, out);
    kl_jw_obj_begin(&w);
    key_str(&w, "culprit", o->culprit);
    key_time(&w, "detection_time", o->detection_time_ns);
    write_event(&w, o, p);

    kl_jw_key(&w, "evidence_data");
    kl_jw_obj_begin(&w);
    key_u64(&w, "frame_duration_ns", o->duration_ns);
    key_str(&w, "frame_module", o->frame_module);
    key_str(&w, "frame_name", o->frame_name);
    key_str(&w, "frame_package", o->frame_package);
    key_u64(&w, "profile_duration_ns", o->profile_duration_ns);
    key_str(&w, "template_name", KL_STR("profile"));
    key_str(&w, "transaction_id", p->transaction.id);
    key_str(&w, "transaction_name", p->transaction.name);
    key_str(&w, "profile_id", p->event_id);
    kl_jw_key(&w, "sample_count");
    if (o->evidence_sample_count)
        kl_jw_u64(&w, o->sample_count);
    else
        kl_jw_null(&w);
    kl_jw_obj_end(&w);

    kl_jw_key(&w, "evidence_display");
    kl_jw_arr_begin(&w);
    for (uint32_t i = 0; i < o->n_evidence_display; i++) {
        kl_jw_obj_begin(&w);
        key_str(&w, "name", kl_str_c(o->evidence_display[i].name));
        key_str(&w, "value", o->evidence_display[i].value);
        kl_jw_key(&w, "important");
        kl_jw_bool(&w, o->evidence_display[i].important);
        kl_jw_obj_end(&w);
    }
    kl_jw_arr_end(&w);

    kl_jw_key(&w, "fingerprint");
    kl_jw_arr_begin(&w);
    kl_jw_str(&w, kl_str_c(o->fingerprint));
    kl_jw_arr_end(&w);
    key_str(&w, "id", kl_str_c(o->id));
    key_str(&w, "issue_title", kl_str_c(o->title));
    key_str(&w, "level", KL_STR("info"));
    key_str(&w, "payload_type", KL_STR("occurrence"));
    key_u64(&w, "project_id", p->project_id);
    kl_jw_key(&w, "resource_id");
    kl_jw_null(&w);
    key_str(&w, "subtitle", o->subtitle);
    key_u64(&w, "type", o->type);
    key_str(&w, "category", kl_str_c(o->category));
    key_u64(&w, "duration_ns", o->duration_ns);
    key_u64(&w, "sample_count", o->sample_count);
    kl_jw_obj_end(&w);
    return kl_err_is_set(&out->err) ? -1 : 0;
}

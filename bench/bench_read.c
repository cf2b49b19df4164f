/* bench_read.c - the read side over a real store: ingest, aggregated flamegraph, one large
 * profile's flamegraph, bytes on disk per sample
 *
 * usage: bench_read [--dir DIR] [--profiles N=10000] [--runs R=5] [--large FILE]
 *
 * (a) A store in DIR (kept between runs: rebuilt only when DIR/bench_read.ok does not name
 *     the same N and generator version) holds N node sample-v1 transaction profiles of
 *     3,000 samples (101 Hz, 29.7 s) with stacks 20..40 deep, made by walking a fixed call
 *     graph over a 2,000-function vocabulary (each function calls one of 4 callees, the
 *     first 97 % of the time; half the samples repeat the previous stack, the others change
 *     a few frames near the leaf; 10 releases, 20 transactions), so profiles share most
 *     paths as real ones do. Each goes through the
 *     server's worker path: kl_process_run -> kl_stored_item_from_profile -> kl_derive_run
 *     -> kl_store_commit_item (timed: ingest items/s). Then kl_query_flamegraph over all N
 *     + kl_flamegraph_write_speedscope with metrics is timed R times (median; wall and
 *     process CPU).
 * (b) With --large FILE (bench/gen_profile large, ~30 MB cocoa): kl_process_run +
 *     kl_calltree_build + kl_flamegraph_add + speedscope write, R times (median), wall and
 *     process CPU clock (ms/process_ms/tree_fg_ms and their cpu_ counterparts).
 * (c) Bytes per sample: zstd blob files under DIR/blobs, and sum(length(tree)) of the
 *     calltrees table, each over the stored sample count.
 * Output: "RESULT key=value ..." lines for bench/run.sh, plus a human summary on stderr.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "aggregate/flamegraph.h"
#include "calltree/calltree.h"
#include "pipeline/derive.h"
#include "pipeline/process.h"
#include "query/query.h"
#include "store/store.h"

#define GEN_VERSION 4 /* 4: call trees in the KCT2 form */
#define VOCAB 2000
#define CALLEES 4
#define SAMPLES 3000
#define STEP_NS 9900000ull /* 101 Hz: 2,999 intervals = 29.69 s, under Relay's 30 s */
#define MAXD 40
#define HOT_PCT 97

static char names[VOCAB][48];
static uint32_t callee[VOCAB][CALLEES];
static uint64_t rng;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void vocab_init(void)
{
    static const char *const verbs[] = {
        "handle",   "parse",    "render",  "load",      "fetch", "compute", "encode", "decode",
        "validate", "dispatch", "resolve", "serialize", "query", "update",  "build",  "apply"};
    static const char *const nouns[] = {
        "Request", "User",     "Order", "Cart",  "Session", "Token", "Row",    "Node",
        "Layout",  "Template", "Cache", "Route", "Payload", "Event", "Schema", "Stream"};
    rng = 0x9e3779b97f4a7c15ULL;
    for (uint32_t g = 0; g < VOCAB; g++) {
        snprintf(names[g], sizeof names[g], "%s%s_%u", verbs[g % 16], nouns[(g / 16) % 16], g);
        for (int c = 0; c < CALLEES; c++)
            callee[g][c] = rnd() % VOCAB;
    }
}

/* ---- one node v1 profile as JSON ---- */

struct gen {
    char *buf;
    size_t len, cap;
    int32_t local[VOCAB]; /* global frame -> index in this profile's frames */
    uint32_t order[VOCAB], n_frames;
    uint32_t *stacks; /* flat, leaf first */
    uint32_t *stack_off, *stack_len, n_stacks;
    uint32_t *sample_stack;
};

static void put(struct gen *g, const char *s, size_t n)
{
    if (g->len + n + KL_PADDING + 1 > g->cap) {
        while (g->len + n + KL_PADDING + 1 > g->cap)
            g->cap = g->cap ? g->cap * 2 : (1u << 20);
        g->buf = realloc(g->buf, g->cap);
        if (!g->buf)
            abort();
    }
    memcpy(g->buf + g->len, s, n);
    g->len += n;
}

static void putf(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void putf(struct gen *g, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put(g, tmp, (size_t)n);
}

static void gen_profile(struct gen *g, uint32_t idx, int64_t ts_s)
{
    rng = 0x2545f4914f6cdd1dULL ^ ((uint64_t)idx * 0x9e3779b97f4a7c15ULL);
    rnd();
    g->len = 0;
    g->n_frames = 0;
    g->n_stacks = 0;
    memset(g->local, 0xff, sizeof g->local);
    if (!g->stacks) {
        g->stacks = malloc(sizeof *g->stacks * SAMPLES * MAXD);
        g->stack_off = malloc(sizeof *g->stack_off * SAMPLES);
        g->stack_len = malloc(sizeof *g->stack_len * SAMPLES);
        g->sample_stack = malloc(sizeof *g->sample_stack * SAMPLES);
    }
    uint32_t stack[MAXD], sp = 0, flat = 0;
    for (uint32_t s = 0; s < SAMPLES; s++) {
        uint32_t pop = s == 0 ? 0 : (rnd() & 1);
        while (pop && pop < sp && (rnd() & 1))
            pop++;
        if (sp && pop >= sp)
            pop = sp - 1;
        if (s % 500 == 0)
            pop = sp; /* a new root now and then */
        if (s > 0 && pop == 0) {
            g->sample_stack[s] = g->sample_stack[s - 1]; /* same stack: same stack id */
            continue;
        }
        /* the new stack differs from the previous one by a few frames near the leaf, as
         * consecutive samples do: pop ~2 (geometric), push back about as many (+-2), depth
         * kept in 20..40; a new root (every 500 samples) starts a fresh 20..40 stack */
        uint32_t target = sp == pop ? 20 + rnd() % (MAXD - 20 + 1) : sp + (rnd() % 5) - 2;
        sp -= pop;
        if (target < 20)
            target = 20;
        if (target > MAXD)
            target = MAXD;
        if (target <= sp)
            target = sp + 1 <= MAXD ? sp + 1 : sp;
        while (sp < target) {
            uint32_t r = rnd() % 100, c = r < HOT_PCT ? 0 : 1 + r % (CALLEES - 1);
            uint32_t f = sp ? callee[stack[sp - 1]][c] : rnd() % 3;
            stack[sp++] = f;
        }
        g->stack_off[g->n_stacks] = flat;
        g->stack_len[g->n_stacks] = sp;
        for (uint32_t i = 0; i < sp; i++) {
            uint32_t f = stack[sp - 1 - i];
            if (g->local[f] < 0) {
                g->local[f] = (int32_t)g->n_frames;
                g->order[g->n_frames++] = f;
            }
            g->stacks[flat++] = (uint32_t)g->local[f];
        }
        g->sample_stack[s] = g->n_stacks++;
    }
    char pid[33], tid[33], trace[33];
    snprintf(pid, sizeof pid, "%08x%024x", 0xbe7c4ea1u, idx);
    snprintf(tid, sizeof tid, "%08x%024x", 0x7a000001u, idx);
    snprintf(trace, sizeof trace, "%08x%024x", 0x7ace0001u, idx);
    time_t t = (time_t)ts_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    char iso[40];
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    putf(g,
         "{\"event_id\":\"%s\",\"timestamp\":\"%s\",\"platform\":\"node\",\"version\":\"1\","
         "\"release\":\"app@%u.0\",\"environment\":\"production\","
         "\"runtime\":{\"name\":\"node\",\"version\":\"20.11.1\"},"
         "\"os\":{\"name\":\"linux\",\"version\":\"6.1\",\"build_number\":\"1\"},"
         "\"device\":{\"architecture\":\"x64\",\"locale\":\"en_US\",\"manufacturer\":\"Linux\","
         "\"model\":\"x86_64\",\"is_emulator\":false},"
         "\"transaction\":{\"name\":\"GET /route/%u\",\"id\":\"%s\",\"trace_id\":\"%s\","
         "\"active_thread_id\":\"0\"},\"profile\":{\"frames\":[",
         pid, iso, idx % 10, idx % 20, tid, trace);
    for (uint32_t i = 0; i < g->n_frames; i++) {
        uint32_t f = g->order[i];
        putf(g,
             "%s{\"function\":\"%s\",\"abs_path\":\"/srv/app/%s/mod%u.js\",\"lineno\":%u,"
             "\"colno\":%u,\"in_app\":%s}",
             i ? "," : "", names[f], f % 7 == 0 ? "node_modules/lib" : "src", f % 40, 10 + f,
             1 + f % 80, f % 7 == 0 ? "false" : "true");
    }
    put(g, "],\"stacks\":[", sizeof "],\"stacks\":[" - 1);
    for (uint32_t k = 0; k < g->n_stacks; k++) {
        if (k)
            put(g, ",", 1);
        put(g, "[", 1);
        for (uint32_t i = 0; i < g->stack_len[k]; i++) {
            /* leaf first, as stored */
            uint32_t v = g->stacks[g->stack_off[k] + i];
            putf(g, i ? ",%u" : "%u", v);
        }
        put(g, "]", sizeof "]" - 1);
    }
    put(g, "],\"samples\":[", sizeof "],\"samples\":[" - 1);
    for (uint32_t s = 0; s < SAMPLES; s++)
        putf(g,
             "%s{\"stack_id\":%u,\"thread_id\":\"0\",\"elapsed_since_start_ns\":\"%" PRIu64 "\"}",
             s ? "," : "", g->sample_stack[s], (uint64_t)(s * STEP_NS));
    put(g, "],\"thread_metadata\":{\"0\":{\"name\":\"main\"}}}}",
        sizeof "],\"thread_metadata\":{\"0\":{\"name\":\"main\"}}}}" - 1);
    memset(g->buf + g->len, 0, KL_PADDING);
}

/* ---- (a) store ---- */

static int build_store(const char *dir, uint32_t n, double *items_per_s, uint64_t *json_bytes)
{
    struct kl_err err = KL_ERR_INIT;
    struct kl_store *s = kl_store_open_sqlite(dir, &err);
    if (!s) {
        fprintf(stderr, "bench_read: open %s: %s\n", dir, err.msg);
        return -1;
    }
    char key[KL_STORE_KEY_LEN + 1];
    if (kl_store_bootstrap(s, key, &err) < 0) {
        fprintf(stderr, "bench_read: bootstrap: %s\n", err.msg);
        kl_store_close(s);
        return -1;
    }
    struct gen g;
    memset(&g, 0, sizeof g);
    int64_t base = (int64_t)time(NULL) - 86400 * 3;
    double t0 = wall_s(), gen_s = 0;
    uint64_t bytes = 0;
    uint32_t failed = 0;
    for (uint32_t i = 0; i < n; i++) {
        double g0 = wall_s();
        gen_profile(&g, i, base + i * 20);
        gen_s += wall_s() - g0;
        bytes += g.len;
        struct kl_arena a;
        kl_arena_init(&a);
        struct kl_process_opts o;
        kl_process_opts_init(&o);
        o.item_type = KL_ITEM_PROFILE;
        o.organization_id = 1;
        o.project_id = 1;
        o.received = base + i * 20 + 60;
        struct kl_process_result res;
        memset(&res, 0, sizeof res);
        char qid[32];
        int qn = snprintf(qid, sizeof qid, "bench/%u", i);
        struct kl_stored_item it;
        kl_err_clear(&err);
        if (kl_process_run(&a, g.buf, g.len, &o, &res) < 0 || !res.profile) {
            if (failed++ < 3)
                fprintf(stderr, "bench_read: profile %u rejected: %s\n", i, res.err.msg);
        } else if (kl_stored_item_from_profile(&a, res.profile, kl_str_make(qid, (size_t)qn),
                                               res.outcomes, res.n_outcomes, &it, &err) < 0 ||
                   kl_derive_run(&a, res.profile, &it, &err) < 0 ||
                   kl_store_commit_item(s, &it, &err) < 0) {
            if (failed++ < 3)
                fprintf(stderr, "bench_read: profile %u: %s\n", i, err.msg);
        }
        kl_arena_release(&a);
        if ((i + 1) % 1000 == 0)
            fprintf(stderr, "  stored %u/%u (%.1f s)\n", i + 1, n, wall_s() - t0);
    }
    double el = wall_s() - t0 - gen_s;
    *items_per_s = n / el;
    *json_bytes = bytes;
    free(g.buf);
    free(g.stacks);
    free(g.stack_off);
    free(g.stack_len);
    free(g.sample_stack);
    kl_store_close(s);
    fprintf(stderr,
            "  ingest: %u profiles, %.1f MB JSON, %.1f s (+%.1f s generating): %.0f items/s, %u "
            "failed\n",
            n, bytes / 1e6, el, gen_s, *items_per_s, failed);
    return failed ? -1 : 0;
}

static int count_rows(void *ctx, const struct kl_profile_row *r)
{
    uint64_t *c = ctx;
    c[0]++;
    c[1] += r->sample_count;
    return 0;
}

static uint64_t blob_bytes;
static int add_file(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)path;
    (void)f;
    if (flag == FTW_F)
        blob_bytes += (uint64_t)st->st_size;
    return 0;
}

static int discard(void *ctx, const char *p, size_t n, struct kl_err *err)
{
    (void)p;
    (void)err;
    *(uint64_t *)ctx += n;
    return 0;
}

/* ---- (b) one large profile ---- */

static int bench_large(const char *file, int runs)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "bench_read: cannot open %s\n", file);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = calloc(1, (size_t)sz + KL_PADDING + 1);
    if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    double *ms = calloc((size_t)runs + 1, sizeof *ms),
           *proc = calloc((size_t)runs + 1, sizeof *proc),
           *cms = calloc((size_t)runs + 1, sizeof *cms),
           *cproc = calloc((size_t)runs + 1, sizeof *cproc);
    uint64_t nodes = 0, out_bytes = 0;
    for (int r = -1; r < runs; r++) { /* one warm-up */
        struct kl_arena a;
        kl_arena_init(&a);
        struct kl_process_opts o;
        kl_process_opts_init(&o);
        o.item_type = KL_ITEM_AUTO;
        struct kl_process_result res;
        memset(&res, 0, sizeof res);
        double t0 = wall_s(), c0 = cpu_s();
        if (kl_process_run(&a, buf, (size_t)sz, &o, &res) < 0 || !res.profile) {
            fprintf(stderr, "bench_read: %s rejected: %s\n", file, res.err.msg);
            kl_arena_release(&a);
            free(buf);
            return -1;
        }
        double t1 = wall_s(), c1 = cpu_s();
        struct kl_err err = KL_ERR_INIT;
        struct kl_calltree *t = kl_calltree_build(&a, res.profile, KL_CALLTREE_ACTIVE, &err);
        struct kl_fg_options fo = {.metrics = true};
        struct kl_flamegraph *fg = kl_flamegraph_new(&fo);
        struct kl_fg_add how = {0};
        if (!t || kl_flamegraph_add(fg, t, &how, &err) < 0) {
            fprintf(stderr, "bench_read: tree: %s\n", err.msg);
            return -1;
        }
        struct kl_buf b;
        kl_buf_init(&b, (size_t)1 << 32);
        out_bytes = 0;
        kl_buf_set_sink(&b, discard, &out_bytes);
        struct kl_fg_speedscope_opts so = {.metrics = true};
        if (kl_flamegraph_write_speedscope(fg, &so, &b, &err) < 0 || kl_buf_flush(&b) < 0)
            return -1;
        double t2 = wall_s(), c2 = cpu_s();
        nodes = t->n_nodes;
        kl_buf_release(&b);
        kl_flamegraph_free(fg);
        kl_arena_release(&a);
        if (r >= 0) {
            ms[r] = (t2 - t0) * 1e3;
            proc[r] = (t1 - t0) * 1e3;
            cms[r] = (c2 - c0) * 1e3;
            cproc[r] = (c1 - c0) * 1e3;
        }
    }
    double m = median(ms, runs), mp = median(proc, runs);
    double cm = median(cms, runs), cp = median(cproc, runs);
    printf("RESULT case=large bytes=%ld nodes=%" PRIu64
           " ms=%.1f process_ms=%.1f tree_fg_ms=%.1f cpu_ms=%.1f process_cpu_ms=%.1f "
           "tree_fg_cpu_ms=%.1f out_bytes=%" PRIu64 "\n",
           sz, nodes, m, mp, m - mp, cm, cp, cm - cp, out_bytes);
    free(ms);
    free(proc);
    free(cms);
    free(cproc);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *large = NULL;
    uint32_t n = 10000;
    int runs = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--profiles") && i + 1 < argc)
            n = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--large") && i + 1 < argc)
            large = argv[++i];
        else {
            fprintf(stderr,
                    "usage: bench_read [--dir DIR] [--profiles N] [--runs R] [--large FILE]\n");
            return 2;
        }
    }
    if (runs < 1)
        runs = 1;
    char tmpl[] = "/tmp/kiln-bench-read.XXXXXX";
    bool own = false;
    if (!dir) {
        dir = mkdtemp(tmpl);
        own = true;
        if (!dir)
            return 1;
    }
    vocab_init();

    /* (a) the store: reuse when it was built for the same N and generator */
    char mark[4096], want[64];
    snprintf(mark, sizeof mark, "%s/bench_read.ok", dir);
    snprintf(want, sizeof want, "v%d n=%u\n", GEN_VERSION, n);
    char have[64] = "";
    FILE *mf = fopen(mark, "r");
    if (mf) {
        if (!fgets(have, sizeof have, mf))
            have[0] = 0;
        fclose(mf);
    }
    double ingest = 0;
    uint64_t json_bytes = 0;
    bool reused = strcmp(have, want) == 0;
    if (!reused) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd,
                 "rm -rf '%s/kiln.db' '%s/kiln.db-wal' '%s/kiln.db-shm' '%s/blobs' '%s/ingest.txt'",
                 dir, dir, dir, dir, dir);
        if (system(cmd) != 0)
            return 1;
        mkdir(dir, 0755);
        fprintf(stderr, "bench_read: building a store of %u profiles in %s\n", n, dir);
        if (build_store(dir, n, &ingest, &json_bytes) < 0)
            return 1;
        char ip[4096];
        snprintf(ip, sizeof ip, "%s/ingest.txt", dir);
        FILE *f = fopen(ip, "w");
        if (f) {
            fprintf(f, "%.1f %" PRIu64 "\n", ingest, json_bytes);
            fclose(f);
        }
        f = fopen(mark, "w");
        if (f) {
            fputs(want, f);
            fclose(f);
        }
    } else {
        char ip[4096];
        snprintf(ip, sizeof ip, "%s/ingest.txt", dir);
        FILE *f = fopen(ip, "r");
        if (f) {
            if (fscanf(f, "%lf %" SCNu64, &ingest, &json_bytes) != 2)
                ingest = 0;
            fclose(f);
        }
        fprintf(stderr, "bench_read: reusing the store in %s (ingest measured when built)\n", dir);
    }

    struct kl_err err = KL_ERR_INIT;
    struct kl_store *s = kl_store_open_sqlite(dir, &err);
    if (!s) {
        fprintf(stderr, "bench_read: open: %s\n", err.msg);
        return 1;
    }
    uint64_t cnt[2] = {0, 0};
    struct kl_profile_filter all;
    memset(&all, 0, sizeof all);
    all.organization_id = 1;
    if (kl_store_list_profiles(s, &all, count_rows, cnt, &err) < 0) {
        fprintf(stderr, "bench_read: list: %s\n", err.msg);
        return 1;
    }
    double *wall = calloc((size_t)runs, sizeof *wall), *cpu = calloc((size_t)runs, sizeof *cpu);
    double *qms = calloc((size_t)runs, sizeof *qms);
    uint64_t trees = 0, out_bytes = 0, fg_nodes = 0;
    for (int r = 0; r < runs; r++) {
        double w0 = wall_s(), c0 = cpu_s();
        struct kl_fg_options fo = {.metrics = true};
        struct kl_flamegraph *fg = kl_flamegraph_new(&fo);
        if (kl_query_flamegraph(s, &all, fg, &trees, &err) < 0) {
            fprintf(stderr, "bench_read: query: %s\n", err.msg);
            return 1;
        }
        double w1 = wall_s();
        struct kl_buf b;
        kl_buf_init(&b, (size_t)1 << 32);
        out_bytes = 0;
        kl_buf_set_sink(&b, discard, &out_bytes);
        struct kl_fg_speedscope_opts so = {.metrics = true, .project_id = 1};
        if (kl_flamegraph_write_speedscope(fg, &so, &b, &err) < 0 || kl_buf_flush(&b) < 0) {
            fprintf(stderr, "bench_read: write: %s\n", err.msg);
            return 1;
        }
        fg_nodes = kl_flamegraph_n_nodes(fg);
        kl_buf_release(&b);
        kl_flamegraph_free(fg);
        wall[r] = (wall_s() - w0) * 1e3;
        cpu[r] = (cpu_s() - c0) * 1e3;
        qms[r] = (w1 - w0) * 1e3;
    }
    double mw = median(wall, runs), mc = median(cpu, runs), mq = median(qms, runs);
    kl_store_close(s);

    /* (c) bytes per sample */
    char path[4200];
    snprintf(path, sizeof path, "%s/blobs", dir);
    blob_bytes = 0;
    nftw(path, add_file, 32, FTW_PHYS);
    uint64_t tree_bytes = 0;
    sqlite3 *db;
    snprintf(path, sizeof path, "%s/kiln.db", dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, "SELECT coalesce(sum(length(tree)),0) FROM calltrees", -1, &st,
                               NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                tree_bytes = (uint64_t)sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
    uint64_t samples = cnt[1] ? cnt[1] : 1;
    printf("RESULT case=store profiles=%" PRIu64 " samples=%" PRIu64
           " reused=%d ingest_items_s=%.0f "
           "json_bytes=%" PRIu64 "\n",
           cnt[0], cnt[1], reused, ingest, json_bytes);
    printf("RESULT case=flamegraph trees=%" PRIu64 " fg_nodes=%" PRIu64 " ms=%.1f cpu_ms=%.1f "
           "query_ms=%.1f write_ms=%.1f profiles_s_core=%.0f out_bytes=%" PRIu64 "\n",
           trees, fg_nodes, mw, mc, mq, mw - mq, mc > 0 ? trees / (mc / 1e3) : 0, out_bytes);
    printf("RESULT case=bytes blob_bytes=%" PRIu64 " tree_bytes=%" PRIu64 " blob_per_sample=%.2f "
           "tree_per_sample=%.2f\n",
           blob_bytes, tree_bytes, (double)blob_bytes / samples, (double)tree_bytes / samples);
    free(wall);
    free(cpu);
    free(qms);
    int rc = 0;
    if (large && bench_large(large, runs) < 0)
        rc = 1;
    if (own) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            rc = 1;
    }
    return rc;
}

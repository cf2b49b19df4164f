/* bench_flamegraph.c - aggregate many synthetic call trees into one flamegraph with metrics
 *
 * usage: bench_flamegraph [profiles=10000] [distinct_trees=2000] [runs=5] [hot_pct=97]
 *
 * Trees are generated like calltree.c builds them from samples: 3,000 samples 10 ms apart,
 * each sample pops a few frames off the previous stack (geometric, mean ~2) and pushes
 * callees until a target depth of 20..40, walking a fixed call graph over a vocabulary of
 * 2,000 frames (each frame calls one of 4 callees, the first hot_pct% of the time), so profiles of
 * the "same program" share most paths as real ones do; half the samples repeat the previous
 * stack. A pool of distinct trees is cycled (30 M nodes held at once
 * would be ~1 GB; stored trees are decoded one at a time in the server anyway).
 * Reported: add (merge) time, write time (speedscope with frame infos and metrics into a
 * discarding sink), total, profiles/s/core and node merges/s/core, median of the runs, on 1
 * thread and on 2 threads (two accumulators, then kl_flamegraph_merge).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregate/flamegraph.h"
#include "base/hash.h"

#define VOCAB 2000
#define CALLEES 4
#define SAMPLES 3000
#define MAXD 40

static char names[VOCAB][48];
static char pkgs[40][32];
static uint32_t callee[VOCAB][CALLEES];
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t hot_pct = 97; /* how often a frame calls its usual callee */

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct kl_calltree *gen_tree(struct kl_arena *a)
{
    static int32_t local[VOCAB];
    memset(local, 0xff, sizeof local);
    struct kl_calltree *t = kl_arena_calloc(a, 1, sizeof *t);
    t->frames = kl_arena_calloc(a, VOCAB, sizeof *t->frames);
    t->nodes = kl_arena_calloc(a, SAMPLES * 4, sizeof *t->nodes);
    uint32_t stack[MAXD], open[MAXD], sp = 0, nn = 0;
    for (uint32_t s = 0; s <= SAMPLES; s++) {
        uint64_t ts = (uint64_t)s * 10000000ull;
        /* half the samples repeat the previous stack (the leaf node grows) */
        uint32_t pop = s == SAMPLES ? sp : (rnd() & 1);
        while (pop && pop < sp && (rnd() & 1))
            pop++;
        if (sp && pop >= sp && s != SAMPLES)
            pop = sp - 1; /* keep the root most of the time */
        if (s % 500 == 0 || pop > sp)
            pop = sp; /* a new root now and then */
        for (uint32_t i = 0; i < pop; i++) {
            struct kl_cnode *n = &t->nodes[open[--sp]];
            n->end_ns = ts;
            n->sample_count = (uint32_t)((n->end_ns - n->start_ns) / 10000000ull);
        }
        if (s == SAMPLES)
            break;
        uint32_t target = pop || !sp ? 20 + rnd() % (MAXD - 20 + 1) : sp;
        while (sp < target) {
            /* skewed callees: the hot path is taken hot_pct% of the time */
            uint32_t r = rnd() % 100, c = r < hot_pct ? 0 : 1 + r % (CALLEES - 1);
            uint32_t g = sp ? callee[stack[sp - 1]][c] : rnd() % 3;
            if (local[g] < 0) {
                local[g] = (int32_t)t->n_frames;
                struct kl_cframe *f = &t->frames[t->n_frames++];
                f->name = kl_str_c(names[g]);
                f->package = kl_str_c(pkgs[g % 40]);
                f->line = g;
                f->flags = KL_CFRAME_AGGREGATABLE | ((g & 1) ? KL_CFRAME_APPLICATION : 0);
                char key[96];
                int k = snprintf(key, sizeof key, "%s:%s", pkgs[g % 40], names[g]);
                f->fingerprint = (uint32_t)kl_fnv1a64(key, (size_t)k);
            }
            struct kl_cnode *n = &t->nodes[nn];
            n->frame = (uint32_t)local[g];
            n->depth = sp;
            n->start_ns = ts;
            open[sp] = nn++;
            stack[sp++] = g;
        }
    }
    t->n_nodes = nn;
    t->threads = kl_arena_calloc(a, 1, sizeof *t->threads);
    t->threads[0] = (struct kl_cthread){KL_STR("259"), KL_STR("main"), 0, nn, true};
    t->n_threads = 1;
    t->duration_ns = SAMPLES * 10000000ull;
    return t;
}

struct job {
    struct kl_calltree **pool;
    uint32_t n_pool, from, to;
    struct kl_flamegraph *fg;
    double cpu_s; /* this thread's CPU time (the machine may be shared: wall time lies) */
};

static double cpu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run_job(void *arg)
{
    struct job *j = arg;
    double c0 = cpu_now_s();
    for (uint32_t i = j->from; i < j->to; i++) {
        char id[40];
        int n = snprintf(id, sizeof id, "%032x", i);
        struct kl_fg_example ex = {.project_id = 1,
                                   .profile_id = kl_str_make(id, (size_t)n),
                                   .start_ns = 1700000000000000000LL + i,
                                   .end_ns = 1700000030000000000LL + i};
        struct kl_fg_add how = {.example = &ex};
        struct kl_err err = KL_ERR_INIT;
        if (kl_flamegraph_add(j->fg, j->pool[i % j->n_pool], &how, &err) < 0) {
            fprintf(stderr, "add: %s\n", err.msg);
            exit(1);
        }
    }
    j->cpu_s = cpu_now_s() - c0;
    return NULL;
}

static int discard(void *ctx, const char *p, size_t n, struct kl_err *err)
{
    (void)p;
    (void)err;
    *(uint64_t *)ctx += n;
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    uint32_t n_prof = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 10000;
    uint32_t n_pool = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 2000;
    int runs = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 5;
    if (argc > 4)
        hot_pct = (uint32_t)strtoul(argv[4], NULL, 10);
    if (runs > 32)
        runs = 32;
    for (uint32_t i = 0; i < VOCAB; i++) {
        snprintf(names[i], sizeof names[i], "Module%u.Class%u.method_%u", i % 97, i % 331, i);
        for (int k = 0; k < CALLEES; k++)
            callee[i][k] = rnd() % VOCAB;
    }
    for (int i = 0; i < 40; i++)
        snprintf(pkgs[i], sizeof pkgs[i], "com.example.pkg%d", i);
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_calltree **pool = kl_xmalloc(n_pool * sizeof *pool);
    uint64_t nodes_per_cycle = 0;
    for (uint32_t i = 0; i < n_pool; i++) {
        pool[i] = gen_tree(&a);
        nodes_per_cycle += pool[i]->n_nodes;
    }
    double avg_nodes = (double)nodes_per_cycle / n_pool;
    printf("profiles %u, distinct trees %u, avg nodes/tree %.0f, vocabulary %d frames, hot "
           "path %u%%\n",
           n_prof, n_pool, avg_nodes, VOCAB, hot_pct);

    for (int threads = 1; threads <= 2; threads++) {
        double t_add[32], t_write[32], t_tot[32], c_tot[32];
        uint32_t merged_nodes = 0;
        uint64_t out_bytes = 0;
        for (int r = 0; r < runs; r++) {
            struct kl_fg_options opt = {.metrics = true};
            struct job jobs[2];
            pthread_t th[2];
            double t0 = now_s();
            for (int k = 0; k < threads; k++) {
                jobs[k] = (struct job){pool,
                                       n_pool,
                                       n_prof * (uint32_t)k / (uint32_t)threads,
                                       n_prof * (uint32_t)(k + 1) / (uint32_t)threads,
                                       kl_flamegraph_new(&opt),
                                       0};
                pthread_create(&th[k], NULL, run_job, &jobs[k]);
            }
            for (int k = 0; k < threads; k++)
                pthread_join(th[k], NULL);
            struct kl_err err = KL_ERR_INIT;
            double cm = cpu_now_s();
            for (int k = 1; k < threads; k++)
                kl_flamegraph_merge(jobs[0].fg, jobs[k].fg, &err);
            double t1 = now_s();
            struct kl_buf b;
            out_bytes = 0;
            kl_buf_init(&b, 1 << 20);
            kl_buf_set_sink(&b, discard, &out_bytes);
            struct kl_fg_speedscope_opts so = {.metrics = true};
            kl_flamegraph_write_speedscope(jobs[0].fg, &so, &b, &err);
            kl_buf_flush(&b);
            kl_buf_release(&b);
            double t2 = now_s();
            c_tot[r] = cpu_now_s() - cm;
            for (int k = 0; k < threads; k++)
                c_tot[r] += jobs[k].cpu_s;
            merged_nodes = kl_flamegraph_n_nodes(jobs[0].fg);
            for (int k = 0; k < threads; k++)
                kl_flamegraph_free(jobs[k].fg);
            t_add[r] = t1 - t0;
            t_write[r] = t2 - t1;
            t_tot[r] = t2 - t0;
        }
        qsort(t_add, (size_t)runs, sizeof(double), cmp_d);
        qsort(t_write, (size_t)runs, sizeof(double), cmp_d);
        qsort(t_tot, (size_t)runs, sizeof(double), cmp_d);
        qsort(c_tot, (size_t)runs, sizeof(double), cmp_d);
        double add = t_add[runs / 2], wr = t_write[runs / 2], tot = t_tot[runs / 2];
        printf("%d thread%s: merge %.0f ms, write %.0f ms (%.1f MB speedscope+metrics), total "
               "%.0f ms; %u merged nodes\n",
               threads, threads > 1 ? "s" : " ", add * 1e3, wr * 1e3, (double)out_bytes / 1e6,
               tot * 1e3, merged_nodes);
        printf("   %.0f profiles/s/core (total), %.1f M node merges/s/core (merge phase)\n",
               n_prof / (tot * threads), avg_nodes * n_prof / (add * threads) / 1e6);
        printf("   CPU time (merge + write, all threads) %.0f ms: %.0f profiles per CPU-second\n",
               c_tot[runs / 2] * 1e3, n_prof / c_tot[runs / 2]);
    }
    kl_arena_release(&a);
    free(pool);
    return 0;
}

/* bench_process.c - in-process throughput of the profile path, and peak RSS of `kiln process`
 *
 * Throughput mode (bench_process FILE): loads FILE once and times three cases on the same
 * bytes, each with 1 untimed warm-up and then at least --min-iters iterations and at least
 * --min-cpu seconds, timed with the process CPU clock (CLOCK_PROCESS_CPUTIME_ID; set
 * BENCH_WALL=1 for wall time), reporting the median iteration as MB/s of input (MB = 10^6
 * bytes), the method of ../shared/spec/dependency-bench.md:
 *   ceiling  kl_json_validate: simdjson's DOM parser over the whole document, keeping
 *            nothing. No JSON consumer on this machine does less work per byte.
 *   parse    kl_profile_parse alone (JSON -> struct kl_profile), fresh arena per iteration.
 *   process  kl_process_run (parse, validate, merge, normalize, outcomes) plus
 *            kl_profile_write_stored into a fresh kl_buf, fresh arena per iteration: the
 *            whole CPU cost of one profile short of storage.
 * The last line is machine-readable (key=value) for bench/run.sh.
 *
 * RSS mode (bench_process --rss KILN FILE): runs `KILN process FILE -o /dev/null` as a
 * child --runs times (posix_spawn, stdout to /dev/null) and reports the median ru_maxrss from
 * wait4(). It must run in a small process: Linux folds the parent's high-water RSS at exec
 * time into the child's ru_maxrss, so this mode reads nothing before spawning.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "ingest/parse.h"
#include "json/json.h"
#include "output/stored.h"
#include "pipeline/process.h"

extern char **environ;

#define MAX_INPUT_BYTES (1024u * 1024 * 1024)
#define MAX_OUTPUT_BYTES (1024u * 1024 * 1024)
#define MAX_ITERS 1000000u

struct opts {
    unsigned min_iters;
    double min_cpu_s;
    bool wall;
    enum kl_item_type item;
    const char *only; /* run just this case (for profiling with perf), or NULL */
};

struct input {
    const char *buf;
    size_t len;
    enum kl_item_type item;
    size_t out_bytes;  /* stored-form size from the last process iteration */
    struct kl_err err; /* first failure of a case */
};

typedef int bench_fn(struct input *in);

static double now_s(bool wall)
{
    struct timespec ts;
    clock_gettime(wall ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------------------------------ */
/* The three cases                                                                       */

static int case_ceiling(struct input *in)
{
    return kl_json_validate(in->buf, in->len, KL_R_PROFILING_INVALID_JSON, &in->err);
}

static int case_parse(struct input *in)
{
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_profile *p = kl_profile_parse(&a, in->buf, in->len, in->item, &in->err);
    kl_arena_release(&a);
    return p ? 0 : -1;
}

static int case_process(struct input *in)
{
    struct kl_arena a;
    struct kl_process_opts o;
    struct kl_process_result res;
    struct kl_buf out;
    int rc = -1;

    kl_arena_init(&a);
    kl_process_opts_init(&o);
    o.item_type = in->item;
    if (kl_process_run(&a, in->buf, in->len, &o, &res) < 0) {
        kl_err_set(&in->err, res.err.reason, "%s", res.err.msg);
        goto out_arena;
    }
    kl_buf_init(&out, MAX_OUTPUT_BYTES);
    if (kl_profile_write_stored(res.profile, &out, &in->err) == 0) {
        in->out_bytes = out.len;
        rc = 0;
    }
    kl_buf_release(&out);
out_arena:
    kl_arena_release(&a);
    return rc;
}

/* Warm up once, then time until both minimums are met. Returns the median MB/s, 0 when
 * skipped by --only, -1 on failure. */
static double run_case(const char *name, bench_fn *fn, struct input *in, const struct opts *o)
{
    size_t cap = 64, n = 0;
    double *t = kl_xmalloc(cap * sizeof(*t));
    double total = 0;

    if (o->only && strcmp(o->only, name) != 0)
        return 0;
    kl_err_clear(&in->err);
    if (fn(in) < 0) {
        fprintf(stderr, "bench_process: %s failed: %s (%s)\n", name, in->err.msg,
                kl_reason_str(in->err.reason));
        free(t);
        return -1;
    }
    while ((n < o->min_iters || total < o->min_cpu_s) && n < MAX_ITERS) {
        double t0 = now_s(o->wall);
        int rc = fn(in);
        double dt = now_s(o->wall) - t0;
        if (rc < 0) {
            fprintf(stderr, "bench_process: %s failed on iteration %zu: %s (%s)\n", name, n,
                    in->err.msg, kl_reason_str(in->err.reason));
            free(t);
            return -1;
        }
        if (n == cap) {
            cap *= 2;
            t = kl_xrealloc(t, cap * sizeof(*t));
        }
        t[n++] = dt;
        total += dt;
    }
    double min = t[0], max = t[0];
    for (size_t i = 1; i < n; i++) {
        min = t[i] < min ? t[i] : min;
        max = t[i] > max ? t[i] : max;
    }
    double med = median(t, n);
    double mbs = (double)in->len / 1e6 / med;
    printf("%-8s %9.1f MB/s  median %9.3f ms  (min %.3f, max %.3f, %zu iterations, %.2f s %s)\n",
           name, mbs, med * 1e3, min * 1e3, max * 1e3, n, total, o->wall ? "wall" : "cpu");
    free(t);
    return mbs;
}

static int bench_file(const char *path, const struct opts *o)
{
    struct kl_err err = KL_ERR_INIT;
    char *buf;
    size_t len;

    if (kl_read_file(path, MAX_INPUT_BYTES, &buf, &len, &err) < 0) {
        fprintf(stderr, "bench_process: cannot read '%s': %s\n", path, err.msg);
        return -1;
    }
    struct input in = {.buf = buf, .len = len, .item = o->item};
    printf("%s: %zu bytes\n", path, len);
    double ceiling = run_case("ceiling", case_ceiling, &in, o);
    double parse = run_case("parse", case_parse, &in, o);
    double process = run_case("process", case_process, &in, o);
    double ratio = ceiling > 0 && process > 0 ? process / ceiling : -1;
    if (process > 0)
        printf("stored form: %zu bytes (%.2f x input); process/ceiling = %.3f\n", in.out_bytes,
               (double)in.out_bytes / (double)len, ratio);
    printf("RESULT bytes=%zu ceiling_mbs=%.1f parse_mbs=%.1f process_mbs=%.1f ratio=%.3f "
           "stored_bytes=%zu\n",
           len, ceiling, parse, process, ratio, in.out_bytes);
    free(buf);
    return ceiling >= 0 && parse >= 0 && process >= 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------------------ */
/* Peak RSS of the real binary                                                           */

static int spawn_wait(char **argv, struct rusage *ru, int *status)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int rc;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "bench_process: cannot run '%s': %s\n", argv[0], strerror(rc));
        return -1;
    }
    while (wait4(pid, status, 0, ru) < 0) {
        if (errno != EINTR) {
            perror("bench_process: wait4");
            return -1;
        }
    }
    return 0;
}

static int bench_rss(const char *kiln, const char *path, unsigned runs, char **extra, int n_extra)
{
    char **argv = kl_xcalloc((size_t)n_extra + 6, sizeof(char *));
    long *kib = kl_xcalloc(runs, sizeof(long));
    double *cpu = kl_xcalloc(runs, sizeof(double));
    int failed = 0, last_status = 0, rc = -1, n = 0;
    struct stat st;

    argv[n++] = (char *)kiln;
    argv[n++] = "process";
    argv[n++] = (char *)path;
    argv[n++] = "-o";
    argv[n++] = "/dev/null";
    for (int i = 0; i < n_extra; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    if (stat(path, &st) < 0 || st.st_size <= 0) {
        fprintf(stderr, "bench_process: cannot stat '%s'\n", path);
        goto out_free;
    }
    for (unsigned r = 0; r < runs; r++) {
        struct rusage ru;
        int status;
        if (spawn_wait(argv, &ru, &status) < 0)
            goto out_free;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            failed++;
            last_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        kib[r] = ru.ru_maxrss; /* KiB on Linux */
        cpu[r] = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    }
    qsort(kib, runs, sizeof(*kib), cmp_long);
    long med_kib = runs % 2 ? kib[runs / 2] : (kib[runs / 2 - 1] + kib[runs / 2]) / 2;
    double med_cpu = median(cpu, runs);
    double mib = (double)med_kib / 1024.0;
    double ratio = (double)med_kib * 1024.0 / (double)st.st_size;
    printf("%s process %s: peak RSS median %.1f MiB (min %.1f, max %.1f; %u runs), "
           "%.2f x input, child CPU %.3f s%s\n",
           kiln, path, mib, (double)kib[0] / 1024.0, (double)kib[runs - 1] / 1024.0, runs, ratio,
           med_cpu, failed ? " - FAILED" : "");
    if (failed)
        fprintf(stderr, "bench_process: %d of %u runs of '%s process %s' failed (status %d)\n",
                failed, runs, kiln, path, last_status);
    printf("RSS bytes=%lld rss_mib=%.1f rss_ratio=%.2f child_cpu_s=%.3f failed=%d\n",
           (long long)st.st_size, mib, ratio, med_cpu, failed);
    rc = failed ? -1 : 0;
out_free:
    free(kib);
    free(cpu);
    free(argv);
    return rc;
}

/* ------------------------------------------------------------------------------------ */

static void usage(void)
{
    fputs("usage: bench_process [--item profile|chunk|auto] [--min-iters N] [--min-cpu S]\n"
          "                     [--only ceiling|parse|process] [--cold] FILE\n"
          "       bench_process --rss KILN [--runs N] FILE [-- EXTRA KILN ARGS]\n"
          "  --cold: no arena block cache (memory as for a worker's first profile; by default\n"
          "          iterations reuse the blocks of the previous one, as a worker does)\n"
          "  BENCH_WALL=1 times with the wall clock instead of the process CPU clock\n",
          stderr);
    exit(2);
}

static unsigned parse_uint(const char *s)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v == 0 || v > 1000000)
        usage();
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    struct opts o = {.min_iters = 5, .min_cpu_s = 1.0, .item = KL_ITEM_AUTO};
    const char *kiln = NULL, *path = NULL, *w = getenv("BENCH_WALL");
    unsigned runs = 5;
    int i;

    o.wall = w && *w && strcmp(w, "0") != 0;
    /* the process and parse columns stand for a server worker, which keeps a worker-sized
     * block cache (base/arena.h); --cold turns it off */
    kl_arena_set_cache(KL_ARENA_WORKER_CACHE_BYTES);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (strcmp(a, "--rss") == 0 && i + 1 < argc) {
            kiln = argv[++i];
        } else if (strcmp(a, "--runs") == 0 && i + 1 < argc) {
            runs = parse_uint(argv[++i]);
        } else if (strcmp(a, "--min-iters") == 0 && i + 1 < argc) {
            o.min_iters = parse_uint(argv[++i]);
        } else if (strcmp(a, "--min-cpu") == 0 && i + 1 < argc) {
            char *end;
            o.min_cpu_s = strtod(argv[++i], &end);
            if (*end || !(o.min_cpu_s >= 0))
                usage();
        } else if (strcmp(a, "--cold") == 0) {
            /* every iteration on fresh memory, as a worker's first profile */
            kl_arena_set_cache(0);
        } else if (strcmp(a, "--only") == 0 && i + 1 < argc) {
            o.only = argv[++i];
        } else if (strcmp(a, "--item") == 0 && i + 1 < argc) {
            const char *t = argv[++i];
            if (strcmp(t, "profile") == 0)
                o.item = KL_ITEM_PROFILE;
            else if (strcmp(t, "chunk") == 0)
                o.item = KL_ITEM_PROFILE_CHUNK;
            else if (strcmp(t, "auto") == 0)
                o.item = KL_ITEM_AUTO;
            else
                usage();
        } else if (a[0] == '-' && a[1] != '\0') {
            usage();
        } else if (!path) {
            path = a;
        } else {
            usage();
        }
    }
    if (!path)
        usage();
    if (kiln)
        return bench_rss(kiln, path, runs, argv + i, argc - i) < 0 ? 1 : 0;
    return bench_file(path, &o) < 0 ? 1 : 0;
}

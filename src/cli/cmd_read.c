/* cmd_read.c - the read side from the command line: `kiln flamegraph`, `kiln query`
 *
 * Both run the same queries as the HTTP API (query/query.h) over a data directory, so they
 * work on a copy of a production directory or next to a running server; `kiln flamegraph
 * --input FILE` renders one profile file without any store. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregate/flamegraph.h"
#include "base/time.h"
#include "calltree/calltree.h"
#include "cli/cli.h"
#include "json/json.h"
#include "pipeline/process.h"
#include "query/query.h"
#include "store/store.h"

const char kl_cmd_flamegraph_help[] =
    "usage: kiln flamegraph [--data DIR] [filters] [--format FMT] [--metrics] [-o FILE]\n"
    "       kiln flamegraph --input PROFILE.json [--format FMT] [-o FILE]\n"
    "       kiln flamegraph --diff [--before-query Q] [--after-query Q] [before/after times]\n"
    "                       [--format json|collapsed|svg] [--weight samples|duration]\n"
    "\n"
    "Aggregate every stored profile and chunk that matches into one flamegraph (no sample\n"
    "cap), from the call trees stored at ingest. --input renders one profile file instead\n"
    "(any format `kiln process` reads). --diff compares two selections (release A vs B, last\n"
    "week vs this week): each frame's weight on both sides, the difference and the relative\n"
    "change; in the SVG red frames grew, blue ones shrank.\n"
    "\n"
    "filters:\n"
    "  --project ID        one project (default: all)\n"
    "  --query Q           Sentry search syntax: transaction:NAME release:R environment:E\n"
    "                      platform:P device.class:low|medium|high profile.kind:transaction|\n"
    "                      continuous (quote values with spaces: transaction:\"a b\")\n"
    "  --since T, --until T  RFC 3339 or unix seconds\n"
    "  --before-query Q, --before-since T, --before-until T   the baseline side of --diff\n"
    "  --after-query Q, --after-since T, --after-until T      the compared side of --diff\n"
    "\n"
    "output:\n"
    "  --format FMT        speedscope (default; Sentry's aggregated flamegraph, loadable in\n"
    "                      speedscope.app), collapsed (\"a;b;c 12\" lines, for flamegraph.pl\n"
    "                      and friends), svg (standalone: search with the button or Ctrl-F,\n"
    "                      click to zoom), json (--diff only, the default there)\n"
    "  --metrics           add the slowest functions (p75/p95/p99/avg/sum/count/worst)\n"
    "  --weight W          samples (default) or duration, for collapsed, svg and --diff\n"
    "  -o, --output FILE   write to FILE (default: standard output)\n"
    "  --data DIR          the data directory (default ./kiln-data)\n";

const char kl_cmd_query_help[] =
    "usage: kiln query [--data DIR] WHAT [filters] [--limit N]\n"
    "\n"
    "Answer questions over a data directory as JSON lines. WHAT is one of:\n"
    "  profiles     stored profiles and chunks matching the filters, newest first\n"
    "  functions    slowest functions: p50/p75/p95/p99/avg/sum/count/worst/examples\n"
    "  trends       functions whose self time changed between --before-* and --after-*\n"
    "               (e.g. --before-query release:1.0 --after-query release:2.0)\n"
    "  occurrences  detected performance issues (main-thread I/O, JSON, regex, image\n"
    "               decode, frame drops...)\n"
    "  spans        spans linked to continuous-profiling chunks (SDK span items and\n"
    "               transactions naming a profiler), newest first; --profiler-id narrows,\n"
    "               --query takes transaction:, release: and environment:\n"
    "\n"
    "filters: --project ID, --query Q (see `kiln flamegraph --help`), --since T, --until T,\n"
    "         --before-query/--before-since/--before-until, --after-query/--after-since/\n"
    "         --after-until, --type N (occurrences), --profiler-id ID (spans), --limit N\n";

struct read_opts {
    const char *data, *out, *input, *format;
    struct kl_str query, bq, aq;
    int64_t since, until, bsince, buntil, asince, auntil;
    uint64_t project, limit, type;
    bool metrics, diff, weight_ns;
    const char *what;
    const char *profiler_id;
};

static int parse(int argc, char **argv, struct read_opts *o, const char *cmd)
{
    memset(o, 0, sizeof *o);
    o->data = "./kiln-data";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--metrics")) {
            o->metrics = true;
            continue;
        }
        if (!strcmp(a, "--diff")) {
            o->diff = true;
            continue;
        }
        if (a[0] != '-') {
            if (o->what) {
                fprintf(stderr, "kiln: one WHAT only; see 'kiln %s --help'\n", cmd);
                return 2;
            }
            o->what = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "kiln: option '%s' needs a value; see 'kiln %s --help'\n", a, cmd);
            return 2;
        }
        i++;
        int64_t *t = NULL;
        uint64_t *n = NULL;
        if (!strcmp(a, "--data"))
            o->data = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            o->out = v;
        else if (!strcmp(a, "--input"))
            o->input = v;
        else if (!strcmp(a, "--format"))
            o->format = v;
        else if (!strcmp(a, "--weight")) {
            if (strcmp(v, "samples") && strcmp(v, "duration")) {
                fprintf(stderr, "kiln: --weight is samples or duration\n");
                return 2;
            }
            o->weight_ns = !strcmp(v, "duration");
        } else if (!strcmp(a, "--query"))
            o->query = kl_str_c(v);
        else if (!strcmp(a, "--before-query"))
            o->bq = kl_str_c(v);
        else if (!strcmp(a, "--after-query"))
            o->aq = kl_str_c(v);
        else if (!strcmp(a, "--since"))
            t = &o->since;
        else if (!strcmp(a, "--until"))
            t = &o->until;
        else if (!strcmp(a, "--before-since"))
            t = &o->bsince;
        else if (!strcmp(a, "--before-until"))
            t = &o->buntil;
        else if (!strcmp(a, "--after-since"))
            t = &o->asince;
        else if (!strcmp(a, "--after-until"))
            t = &o->auntil;
        else if (!strcmp(a, "--project"))
            n = &o->project;
        else if (!strcmp(a, "--limit"))
            n = &o->limit;
        else if (!strcmp(a, "--type"))
            n = &o->type;
        else if (!strcmp(a, "--profiler-id"))
            o->profiler_id = v;
        else {
            fprintf(stderr, "kiln: unknown option '%s'; see 'kiln %s --help'\n", a, cmd);
            return 2;
        }
        if (t && !kl_time_arg_parse(kl_str_c(v), t)) {
            fprintf(stderr, "kiln: %s takes RFC 3339 or unix seconds, not '%s'\n", a, v);
            return 2;
        }
        if (n && !kl_parse_u64(kl_str_c(v), n)) {
            fprintf(stderr, "kiln: %s takes a number, not '%s'\n", a, v);
            return 2;
        }
    }
    return 0;
}

static int make_filter(struct kl_arena *a, const struct read_opts *o, struct kl_str q,
                       int64_t since, int64_t until, struct kl_profile_filter *f)
{
    memset(f, 0, sizeof *f);
    f->project_id = o->project;
    f->since_ns = since;
    f->until_ns = until;
    struct kl_err err = KL_ERR_INIT;
    if (q.ptr && kl_query_parse(a, q, f, &err) < 0) {
        kl_cli_error(&err);
        return -1;
    }
    return 0;
}

static int write_out(const struct read_opts *o, struct kl_buf *b)
{
    int fd = 1;
    if (o->out && strcmp(o->out, "-")) {
        fd = open(o->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            perror("kiln: cannot open output");
            return 2;
        }
    }
    struct kl_err err = KL_ERR_INIT;
    int rc = kl_sink_fd((void *)(intptr_t)fd, b->ptr, b->len, &err);
    if (fd != 1)
        close(fd);
    if (rc < 0) {
        kl_cli_error(&err);
        return 2;
    }
    return 0;
}

static int render(struct kl_flamegraph *fg, const struct read_opts *o, struct kl_buf *b,
                  struct kl_err *err)
{
    enum kl_fg_weight w = o->weight_ns ? KL_FG_WEIGHT_NS : KL_FG_WEIGHT_SAMPLES;
    if (!o->format || !strcmp(o->format, "speedscope")) {
        struct kl_fg_speedscope_opts so = {0};
        so.metrics = o->metrics;
        so.project_id = o->project;
        return kl_flamegraph_write_speedscope(fg, &so, b, err);
    }
    if (!strcmp(o->format, "collapsed"))
        return kl_flamegraph_write_collapsed(fg, w, b, err);
    if (!strcmp(o->format, "svg")) {
        struct kl_fg_svg_opts sv = {0};
        sv.weight = w;
        return kl_flamegraph_write_svg(fg, &sv, b, err);
    }
    return kl_err_set(err, KL_R_USAGE, "--format is speedscope, collapsed or svg");
}

/* One profile file through the pipeline, all threads. */
static int flamegraph_input(struct kl_flamegraph *fg, const char *path, struct kl_err *err)
{
    char *data;
    size_t len;
    if (kl_read_file(path, KL_MAX_PROFILE_BYTES, &data, &len, err) < 0)
        return -1;
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_process_opts po;
    kl_process_opts_init(&po);
    struct kl_process_result res;
    int rc = -1;
    if (kl_process_run(&a, data, len, &po, &res) < 0) {
        *err = res.err;
    } else {
        struct kl_calltree *t = kl_calltree_build(&a, res.profile, KL_CALLTREE_ALL, err);
        struct kl_fg_add how = {0};
        how.threads = KL_CALLTREE_ALL;
        if (t && kl_flamegraph_add(fg, t, &how, err) == 0)
            rc = 0;
    }
    kl_arena_release(&a);
    free(data);
    return rc;
}

int kl_cmd_flamegraph(int argc, char **argv)
{
    struct read_opts o;
    int rc = parse(argc, argv, &o, "flamegraph");
    if (rc)
        return rc;
    if (o.what) {
        fprintf(stderr, "kiln: unexpected argument '%s'; see 'kiln flamegraph --help'\n", o.what);
        return 2;
    }
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_err err = KL_ERR_INIT;
    struct kl_buf b;
    kl_buf_init(&b, (size_t)1 << 32);
    struct kl_store *s = NULL;
    rc = 1;
    if (o.input) {
        struct kl_fg_options fo = {0};
        fo.metrics = o.metrics;
        struct kl_flamegraph *fg = kl_flamegraph_new(&fo);
        if (flamegraph_input(fg, o.input, &err) == 0 && render(fg, &o, &b, &err) == 0)
            rc = write_out(&o, &b);
        kl_flamegraph_free(fg);
        goto out;
    }
    s = kl_store_open_sqlite(o.data, &err);
    if (!s)
        goto out;
    if (o.diff) {
        struct kl_profile_filter fa, fb;
        if (make_filter(&a, &o, o.bq, o.bsince, o.buntil, &fa) < 0 ||
            make_filter(&a, &o, o.aq, o.asince, o.auntil, &fb) < 0) {
            rc = 2;
            goto out;
        }
        struct kl_flamegraph *ga = kl_flamegraph_new(NULL), *gb = kl_flamegraph_new(NULL);
        if (kl_query_flamegraph(s, &fa, ga, NULL, &err) == 0 &&
            kl_query_flamegraph(s, &fb, gb, NULL, &err) == 0) {
            struct kl_fg_diff *d =
                kl_fg_diff_new(ga, gb, o.weight_ns ? KL_FG_WEIGHT_NS : KL_FG_WEIGHT_SAMPLES);
            int wr;
            if (!o.format || !strcmp(o.format, "json"))
                wr = kl_fg_diff_write_json(d, &b, &err);
            else if (!strcmp(o.format, "collapsed"))
                wr = kl_fg_diff_write_collapsed(d, &b, &err);
            else if (!strcmp(o.format, "svg")) {
                struct kl_fg_svg_opts sv = {0};
                sv.weight = o.weight_ns ? KL_FG_WEIGHT_NS : KL_FG_WEIGHT_SAMPLES;
                wr = kl_fg_diff_write_svg(d, &sv, false, &b, &err);
            } else
                wr = kl_err_set(&err, KL_R_USAGE, "--diff --format is json, collapsed or svg");
            kl_fg_diff_free(d);
            if (wr == 0)
                rc = write_out(&o, &b);
        }
        kl_flamegraph_free(ga);
        kl_flamegraph_free(gb);
        goto out;
    }
    struct kl_profile_filter f;
    if (make_filter(&a, &o, o.query, o.since, o.until, &f) < 0) {
        rc = 2;
        goto out;
    }
    struct kl_fg_options fo = {0};
    fo.metrics = o.metrics;
    struct kl_flamegraph *fg = kl_flamegraph_new(&fo);
    uint64_t n = 0;
    if (kl_query_flamegraph(s, &f, fg, &n, &err) == 0 && render(fg, &o, &b, &err) == 0) {
        rc = write_out(&o, &b);
        if (isatty(2))
            fprintf(stderr, "kiln: merged %llu profiles and chunks\n", (unsigned long long)n);
    }
    kl_flamegraph_free(fg);
out:
    if (rc == 1 && kl_err_is_set(&err))
        kl_cli_error(&err);
    kl_buf_release(&b);
    kl_store_close(s);
    kl_arena_release(&a);
    return rc;
}

/* ---- kiln query ---- */

static int q_profile(void *ctx, const struct kl_profile_row *r)
{
    struct kl_buf *b = ctx;
    struct kl_jw w;
    kl_jw_init(&w, b);
    kl_query_write_profile_row(&w, r, "timestamp");
    kl_cli_put_line(b);
    return 0;
}

static int q_occurrence(void *ctx, const struct kl_occurrence_row *r)
{
    struct kl_buf *b = ctx;
    struct kl_jw w;
    kl_jw_init(&w, b);
    char ts[48];
    kl_rfc3339_format(r->start_ns, ts);
    kl_jw_obj_begin(&w);
    kl_jw_key(&w, "profile_id");
    kl_jw_str(&w, r->profile_id);
    kl_jw_key(&w, "timestamp");
    kl_jw_cstr(&w, ts);
    kl_jw_key(&w, "type");
    kl_jw_i64(&w, r->type);
    kl_jw_key(&w, "title");
    kl_jw_str(&w, r->title);
    kl_jw_key(&w, "function");
    kl_jw_str(&w, r->function.ptr ? r->function : KL_STR(""));
    kl_jw_key(&w, "package");
    kl_jw_str(&w, r->package.ptr ? r->package : KL_STR(""));
    kl_jw_key(&w, "duration_ns");
    kl_jw_u64(&w, r->duration_ns);
    kl_jw_key(&w, "transaction");
    kl_jw_str(&w, r->transaction_name.ptr ? r->transaction_name : KL_STR(""));
    kl_jw_obj_end(&w);
    kl_cli_put_line(b);
    return 0;
}

static int q_span(void *ctx, const struct kl_stored_span *r)
{
    struct kl_buf *b = ctx;
    struct kl_jw w;
    kl_jw_init(&w, b);
    kl_query_write_span_row(&w, r, KL_STR_NULL);
    kl_cli_put_line(b);
    return 0;
}

int kl_cmd_query(int argc, char **argv)
{
    struct read_opts o;
    int rc = parse(argc, argv, &o, "query");
    if (rc)
        return rc;
    if (!o.what ||
        (strcmp(o.what, "profiles") && strcmp(o.what, "functions") && strcmp(o.what, "trends") &&
         strcmp(o.what, "occurrences") && strcmp(o.what, "spans"))) {
        fputs(kl_cmd_query_help, stderr);
        return 2;
    }
    struct kl_arena a;
    kl_arena_init(&a);
    struct kl_err err = KL_ERR_INIT;
    struct kl_store *s = kl_store_open_sqlite(o.data, &err);
    struct kl_buf b;
    kl_buf_init(&b, (size_t)1 << 30);
    struct kl_profile_filter f;
    rc = 1;
    if (!s)
        goto out;
    if (make_filter(&a, &o, o.query, o.since, o.until, &f) < 0) {
        rc = 2;
        goto out;
    }
    f.limit = (uint32_t)(o.limit > UINT32_MAX ? UINT32_MAX : o.limit);
    if (!strcmp(o.what, "profiles")) {
        if (kl_store_list_profiles(s, &f, q_profile, &b, &err) == 0)
            rc = 0;
    } else if (!strcmp(o.what, "occurrences")) {
        if (kl_store_list_occurrences(s, &f, (int)o.type, q_occurrence, &b, &err) == 0)
            rc = 0;
    } else if (!strcmp(o.what, "spans")) {
        struct kl_span_filter sf;
        char hex[33];
        if (kl_query_span_filter(&f, KL_STR_NULL, &sf, &err) < 0) {
            kl_cli_error(&err);
            rc = 2;
            goto out;
        }
        if (o.profiler_id) {
            struct kl_uuid u;
            if (!kl_uuid_parse(kl_str_c(o.profiler_id), &u)) {
                fprintf(stderr, "kiln: --profiler-id takes a uuid, not '%s'\n", o.profiler_id);
                rc = 2;
                goto out;
            }
            kl_uuid_hex(&u, hex);
            sf.profiler_id = kl_str_make(hex, 32);
        }
        sf.limit = f.limit;
        if (kl_store_list_spans(s, &sf, q_span, &b, &err) == 0)
            rc = 0;
    } else if (!strcmp(o.what, "functions")) {
        struct kl_query_function *fs;
        uint32_t n;
        if (kl_query_functions(s, &a, &f, (uint32_t)(o.limit ? o.limit : 100), &fs, &n, &err) ==
            0) {
            for (uint32_t i = 0; i < n; i++) {
                struct kl_jw w;
                kl_jw_init(&w, &b);
                kl_query_write_function(&w, &fs[i]);
                kl_cli_put_line(&b);
            }
            rc = 0;
        }
    } else {
        struct kl_profile_filter fa, fb;
        if (make_filter(&a, &o, o.bq, o.bsince, o.buntil, &fa) < 0 ||
            make_filter(&a, &o, o.aq, o.asince, o.auntil, &fb) < 0) {
            rc = 2;
            goto out;
        }
        struct kl_query_trend *ts;
        uint32_t n;
        if (kl_query_function_trends(s, &a, &fa, &fb, (uint32_t)(o.limit ? o.limit : 100), &ts, &n,
                                     &err) == 0) {
            for (uint32_t i = 0; i < n; i++) {
                struct kl_jw w;
                kl_jw_init(&w, &b);
                kl_query_write_trend(&w, &ts[i]);
                kl_cli_put_line(&b);
            }
            rc = 0;
        }
    }
out:
    if (rc == 1)
        kl_cli_error(&err);
    kl_buf_release(&b);
    kl_store_close(s);
    kl_arena_release(&a);
    return rc;
}

/* cmd_store.c - commands that read or manage a data directory: `kiln project`,
 * `kiln outcomes`, `kiln profiles`. They open the same SQLite store a running server
 * uses (WAL: readers and one writer at a time), so they work while `kiln serve` runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/time.h"
#include "cli/cli.h"
#include "json/json.h"
#include "pipeline/outcome.h"
#include "query/query.h"
#include "store/store.h"

const char kl_cmd_project_help[] =
    "usage: kiln project [--data DIR] create NAME\n"
    "       kiln project [--data DIR] list\n"
    "       kiln project [--data DIR] keys PROJECT_ID\n"
    "\n"
    "Manage projects and their DSN keys in a data directory (default ./kiln-data). The first\n"
    "start of `kiln serve` creates organization 'default' (id 1) with project 'default'\n"
    "(id 1) and one key. `create` adds a project with a new key and prints its DSN; `list`\n"
    "prints one JSON line per project; `keys` prints the project's keys and DSNs.\n"
    "\n"
    "options:\n"
    "  --data DIR     the data directory (default ./kiln-data)\n"
    "  --host HOST    host:port used in printed DSNs (default 127.0.0.1:8080)\n";

const char kl_cmd_outcomes_help[] =
    "usage: kiln outcomes [--data DIR] [--since TIME] [--until TIME] [--by-hour]\n"
    "\n"
    "Print the outcomes recorded in a data directory as JSON lines, summed over the whole\n"
    "store (or the time range) per organization, project, outcome, reason and category:\n"
    "  {\"org_id\":1,\"project_id\":1,\"outcome\":\"accepted\",\"reason\":null,\n"
    "   \"category\":\"profile\",\"quantity\":N}\n"
    "Every profile or chunk kiln acknowledged ends in exactly one outcome per category.\n"
    "\n"
    "options:\n"
    "  --data DIR      the data directory (default ./kiln-data)\n"
    "  --since TIME    from TIME (RFC 3339, or unix seconds), rounded down to the hour\n"
    "  --until TIME    before TIME\n"
    "  --by-hour       one line per hour as well (adds \"hour\":\"...\")\n";

const char kl_cmd_profiles_help[] =
    "usage: kiln profiles [--data DIR] [--project ID] [--since TIME] [--until TIME]\n"
    "                     [--limit N]\n"
    "\n"
    "List the stored profiles and chunks, newest first, as JSON lines: profile_id (or\n"
    "profiler_id and chunk_id), project, platform, transaction, release, environment,\n"
    "start, duration_ns, samples. Works while a server runs on the same directory.\n"
    "\n"
    "options:\n"
    "  --data DIR      the data directory (default ./kiln-data)\n"
    "  --project ID    only this project\n"
    "  --since TIME    profiles that started at or after TIME (RFC 3339 or unix seconds)\n"
    "  --until TIME    ... and before TIME\n"
    "  --limit N       at most N lines\n";

struct common {
    const char *data;
    const char *host;
    int64_t since_ns, until_ns;
    uint64_t project;
    uint32_t limit;
    bool by_hour;
    int argc; /* positional arguments left */
    char **argv;
};

/* Parse shared options; positionals are collected in c->argv. Returns 0, or the exit code. */
static int parse_common(int argc, char **argv, struct common *c, const char *cmd)
{
    memset(c, 0, sizeof *c);
    c->data = "./kiln-data";
    c->host = "127.0.0.1:8080";
    c->argv = calloc((size_t)argc + 1, sizeof *c->argv);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (a[0] != '-' || a[1] == '\0') {
            c->argv[c->argc++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--by-hour")) {
            c->by_hour = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "kiln: option '%s' needs a value; see 'kiln %s --help'\n", a, cmd);
            return 2;
        }
        i++;
        if (!strcmp(a, "--data")) {
            c->data = v;
        } else if (!strcmp(a, "--host")) {
            c->host = v;
        } else if (!strcmp(a, "--since") || !strcmp(a, "--until")) {
            if (!kl_time_arg_parse(kl_str_c(v),
                                   !strcmp(a, "--since") ? &c->since_ns : &c->until_ns)) {
                fprintf(stderr, "kiln: %s takes RFC 3339 or unix seconds, not '%s'\n", a, v);
                return 2;
            }
        } else if (!strcmp(a, "--project") || !strcmp(a, "--limit")) {
            if (!kl_parse_u64(kl_str_c(v), &n)) {
                fprintf(stderr, "kiln: %s takes a number, not '%s'\n", a, v);
                return 2;
            }
            if (!strcmp(a, "--project"))
                c->project = n;
            else
                c->limit = (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n);
        } else {
            fprintf(stderr, "kiln: unknown option '%s'; see 'kiln %s --help'\n", a, cmd);
            return 2;
        }
    }
    return 0;
}

static struct kl_store *open_store(const char *dir)
{
    struct kl_err err = KL_ERR_INIT;
    struct kl_store *s = kl_store_open_sqlite(dir, &err);
    if (!s) {
        kl_cli_error(&err);
        fprintf(stderr,
                "kiln: is '%s' a kiln data directory? (--data DIR; `kiln serve` "
                "creates one)\n",
                dir);
    }
    return s;
}

/* ---- kiln project ---- */

struct proj_ctx {
    struct kl_buf out;
    const char *host;
    uint64_t project_id;
};

static int print_project(void *ctx, const struct kl_project *p)
{
    struct proj_ctx *c = ctx;
    struct kl_jw w;
    kl_jw_init(&w, &c->out);
    kl_jw_obj_begin(&w);
    kl_jw_key(&w, "id");
    kl_jw_u64(&w, p->id);
    kl_jw_key(&w, "org_id");
    kl_jw_u64(&w, p->organization_id);
    kl_jw_key(&w, "slug");
    kl_jw_str(&w, p->slug);
    kl_jw_key(&w, "name");
    kl_jw_str(&w, p->name);
    kl_jw_obj_end(&w);
    kl_cli_put_line(&c->out);
    return 0;
}

static int print_key(void *ctx, const struct kl_key *k)
{
    struct proj_ctx *c = ctx;
    char dsn[256];
    snprintf(dsn, sizeof dsn, "http://%.*s@%s/%llu", (int)k->public_key.len, k->public_key.ptr,
             c->host, (unsigned long long)c->project_id);
    struct kl_jw w;
    kl_jw_init(&w, &c->out);
    kl_jw_obj_begin(&w);
    kl_jw_key(&w, "public_key");
    kl_jw_str(&w, k->public_key);
    kl_jw_key(&w, "active");
    kl_jw_bool(&w, k->active);
    kl_jw_key(&w, "dsn");
    kl_jw_cstr(&w, dsn);
    kl_jw_obj_end(&w);
    kl_cli_put_line(&c->out);
    return 0;
}

int kl_cmd_project(int argc, char **argv)
{
    struct common c;
    int rc = parse_common(argc, argv, &c, "project");
    if (rc)
        return rc;
    if (c.argc < 1) {
        fputs(kl_cmd_project_help, stderr);
        free(c.argv);
        return 2;
    }
    struct kl_store *s = open_store(c.data);
    if (!s) {
        free(c.argv);
        return 2;
    }
    struct kl_err err = KL_ERR_INIT;
    struct proj_ctx pc;
    kl_buf_init(&pc.out, 1 << 20);
    pc.host = c.host;
    const char *sub = c.argv[0];
    rc = 0;
    if (!strcmp(sub, "create") && c.argc == 2) {
        uint64_t id;
        if (kl_store_project_create(s, kl_str_c(c.argv[1]), 1, &id, &err) < 0) {
            rc = 1;
        } else {
            pc.project_id = id;
            if (kl_store_project_keys(s, id, print_key, &pc, &err) < 0)
                rc = 1;
        }
    } else if (!strcmp(sub, "list") && c.argc == 1) {
        if (kl_store_project_list(s, print_project, &pc, &err) < 0)
            rc = 1;
    } else if (!strcmp(sub, "keys") && c.argc == 2) {
        uint64_t id;
        if (!kl_parse_u64(kl_str_c(c.argv[1]), &id)) {
            fprintf(stderr, "kiln: project keys takes a project id, not '%s'\n", c.argv[1]);
            rc = 2;
        } else {
            pc.project_id = id;
            if (kl_store_project_keys(s, id, print_key, &pc, &err) < 0)
                rc = 1;
        }
    } else {
        fputs(kl_cmd_project_help, stderr);
        rc = 2;
    }
    if (rc == 1)
        kl_cli_error(&err);
    kl_buf_release(&pc.out);
    kl_store_close(s);
    free(c.argv);
    return rc;
}

/* ---- kiln outcomes ---- */

struct out_ctx {
    struct kl_buf out;
    bool by_hour;
};

static int print_outcome(void *ctx, const struct kl_outcome_row *r)
{
    struct out_ctx *c = ctx;
    struct kl_jw w;
    kl_jw_init(&w, &c->out);
    kl_jw_obj_begin(&w);
    if (c->by_hour) {
        char ts[48];
        kl_rfc3339_format(r->hour_s * 1000000000LL, ts);
        kl_jw_key(&w, "hour");
        kl_jw_cstr(&w, ts);
    }
    kl_jw_key(&w, "org_id");
    kl_jw_u64(&w, r->organization_id);
    kl_jw_key(&w, "project_id");
    kl_jw_u64(&w, r->project_id);
    kl_jw_key(&w, "outcome");
    kl_jw_cstr(&w, kl_outcome_name((enum kl_outcome_kind)r->outcome));
    kl_jw_key(&w, "reason");
    if (r->reason.ptr && r->reason.len)
        kl_jw_str(&w, r->reason);
    else
        kl_jw_null(&w);
    kl_jw_key(&w, "category");
    kl_jw_cstr(&w, kl_category_name((enum kl_category)r->category));
    kl_jw_key(&w, "quantity");
    kl_jw_u64(&w, r->quantity);
    kl_jw_obj_end(&w);
    kl_cli_put_line(&c->out);
    return 0;
}

int kl_cmd_outcomes(int argc, char **argv)
{
    struct common c;
    int rc = parse_common(argc, argv, &c, "outcomes");
    if (rc)
        return rc;
    if (c.argc) {
        fputs(kl_cmd_outcomes_help, stderr);
        free(c.argv);
        return 2;
    }
    struct kl_store *s = open_store(c.data);
    free(c.argv);
    if (!s)
        return 2;
    struct kl_outcome_filter f = {0};
    f.since_s = c.since_ns / 1000000000LL;
    f.until_s = c.until_ns / 1000000000LL;
    f.group = KL_GROUP_PROJECT | KL_GROUP_OUTCOME | KL_GROUP_REASON | KL_GROUP_CATEGORY;
    if (c.by_hour)
        f.group |= KL_GROUP_HOUR;
    struct out_ctx oc;
    kl_buf_init(&oc.out, 1 << 20);
    oc.by_hour = c.by_hour;
    struct kl_err err = KL_ERR_INIT;
    rc = 0;
    if (kl_store_sum_outcomes(s, &f, print_outcome, &oc, &err) < 0) {
        kl_cli_error(&err);
        rc = 1;
    }
    kl_buf_release(&oc.out);
    kl_store_close(s);
    return rc;
}

/* ---- kiln profiles ---- */

static int print_profile(void *ctx, const struct kl_profile_row *r)
{
    struct kl_buf *b = ctx;
    struct kl_jw w;
    kl_jw_init(&w, b);
    kl_query_write_profile_row(&w, r, "start");
    kl_cli_put_line(b);
    return 0;
}

int kl_cmd_profiles(int argc, char **argv)
{
    struct common c;
    int rc = parse_common(argc, argv, &c, "profiles");
    if (rc)
        return rc;
    if (c.argc) {
        fputs(kl_cmd_profiles_help, stderr);
        free(c.argv);
        return 2;
    }
    struct kl_store *s = open_store(c.data);
    if (!s) {
        free(c.argv);
        return 2;
    }
    struct kl_profile_filter f = {0};
    f.project_id = c.project;
    f.since_ns = c.since_ns;
    f.until_ns = c.until_ns;
    f.limit = c.limit;
    free(c.argv);
    struct kl_buf b;
    kl_buf_init(&b, 1 << 20);
    struct kl_err err = KL_ERR_INIT;
    rc = 0;
    if (kl_store_list_profiles(s, &f, print_profile, &b, &err) < 0) {
        kl_cli_error(&err);
        rc = 1;
    }
    kl_buf_release(&b);
    kl_store_close(s);
    return rc;
}

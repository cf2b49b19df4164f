/* cmd_process.c - `kiln process`: one profile, or every profile in an envelope, through the
 * pipeline; the stored form (or speedscope) on stdout, outcomes on stderr */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/decompress.h"
#include "base/str.h"
#include "cli/cli.h"
#include "ingest/envelope.h"
#include "ingest/relay_msg.h"
#include "output/speedscope.h"
#include "output/stored.h"
#include "pipeline/process.h"

const char kl_cmd_process_help[] =
    "usage: kiln process [options] FILE|-\n"
    "\n"
    "Run one profile through parse -> validate -> normalize, as Relay and Sentry do, and\n"
    "write the normalized stored-form JSON (one line per profile). FILE is a profile JSON\n"
    "payload (sample format v1 or v2, legacy Android, Android trace chunk), or with\n"
    "--envelope a Sentry envelope, plain, gzip or zstd; '-' reads standard input.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE       write the result to FILE instead of standard output\n"
    "  --envelope              FILE is a Sentry envelope: process each profile and\n"
    "                          profile_chunk item, merging the envelope's transaction\n"
    "  --msgpack               FILE is Relay's Kafka message to Sentry (msgpack map with\n"
    "                          type, organization_id, project_id, received, retention_days\n"
    "                          and the profile JSON as payload); its ids are used\n"
    "  --transaction FILE      merge this transaction event JSON into the profile (spec\n"
    "                          §3.8: name, release, environment, tags such as device.class)\n"
    "  --item TYPE             profile | profile_chunk | auto (default: auto, a payload\n"
    "                          with profiler_id or chunk_id is a chunk)\n"
    "  --unsampled             treat the profile as unsampled (item header sampled:false)\n"
    "  --outcomes              write the outcomes to standard error as JSON lines:\n"
    "                          {\"outcome\":\"accepted|filtered|invalid\",\"reason\":...,\n"
    "                           \"category\":\"profile|...\",\"quantity\":N,\"event_id\":...}\n"
    "  --format FORMAT         stored (default) | speedscope (the single-profile view\n"
    "                          Sentry serves, loadable in speedscope.app)\n"
    "  --org ID                organization id to record (default 1)\n"
    "  --project ID            project id to record (default 1)\n"
    "  --received SECONDS      receive time, unix seconds (default: now)\n"
    "  --retention-days N      retention to record (default 90)\n"
    "  -h, --help              show this help\n"
    "\n"
    "exit status: 0 every profile accepted; 1 a profile was invalid (stderr has\n"
    "'invalid: <reason> (<detail>)', reasons as Relay's, e.g. profiling_not_enough_samples);\n"
    "2 usage or I/O error.\n"
    "\n"
    "examples:\n"
    "  kiln process profile.json > stored.json\n"
    "  kiln process --envelope --outcomes envelope.bin.gz -o /dev/null\n"
    "  kiln process --format speedscope profile.json > view.speedscope.json\n";

#define MAX_ENVELOPE_BYTES (200u * 1024 * 1024)

struct run {
    struct kl_buf out;
    bool outcomes;
    bool speedscope;
    int status;
    struct kl_buf errbuf;
};

static void report(void *ctx, const struct kl_envelope_item *item, struct kl_process_result *res)
{
    (void)item;
    struct run *r = ctx;
    if (res->err.reason != KL_R_NONE) {
        fprintf(stderr, "invalid: %s (%s)\n", kl_reason_str(res->err.reason), res->err.msg);
        r->status = 1;
    } else {
        struct kl_err err = KL_ERR_INIT;
        int rc = r->speedscope ? kl_speedscope_write(res->profile, &r->out, &err)
                               : kl_profile_write_stored(res->profile, &r->out, &err);
        kl_buf_putc(&r->out, '\n');
        if (rc < 0 || kl_buf_flush(&r->out) < 0) {
            if (!kl_err_is_set(&err))
                err = r->out.err;
            kl_cli_error(&err);
            r->status = 2;
        }
    }
    if (r->outcomes) {
        kl_buf_reset(&r->errbuf);
        for (int i = 0; i < res->n_outcomes; i++)
            kl_outcome_write_json(&res->outcomes[i], &r->errbuf);
        fputs(r->errbuf.ptr, stderr);
    }
}

static int parse_u64_arg(const char *s, uint64_t *out)
{
    return kl_parse_u64(kl_str_c(s), out) ? 0 : -1;
}

int kl_cmd_process(int argc, char **argv)
{
    const char *in_path = NULL, *out_path = NULL, *tx_path = NULL;
    bool envelope = false, msgpack = false;
    struct run r = {0};
    struct kl_process_opts opts;
    kl_process_opts_init(&opts);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!val)
                goto need_value;
            out_path = val, i++;
        } else if (!strcmp(a, "--envelope")) {
            envelope = true;
        } else if (!strcmp(a, "--msgpack")) {
            msgpack = true;
        } else if (!strcmp(a, "--outcomes")) {
            r.outcomes = true;
        } else if (!strcmp(a, "--unsampled")) {
            opts.sampled = false;
        } else if (!strcmp(a, "--transaction")) {
            if (!val)
                goto need_value;
            tx_path = val, i++;
        } else if (!strcmp(a, "--format")) {
            if (!val)
                goto need_value;
            if (!strcmp(val, "speedscope"))
                r.speedscope = true;
            else if (strcmp(val, "stored") != 0) {
                fprintf(stderr, "kiln: --format takes 'stored' or 'speedscope', not '%s'\n", val);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--item")) {
            if (!val)
                goto need_value;
            if (!strcmp(val, "profile"))
                opts.item_type = KL_ITEM_PROFILE;
            else if (!strcmp(val, "profile_chunk"))
                opts.item_type = KL_ITEM_PROFILE_CHUNK;
            else if (!strcmp(val, "auto"))
                opts.item_type = KL_ITEM_AUTO;
            else {
                fprintf(stderr, "kiln: --item takes profile, profile_chunk or auto\n");
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--org") || !strcmp(a, "--project") || !strcmp(a, "--received") ||
                   !strcmp(a, "--retention-days")) {
            if (!val)
                goto need_value;
            if (parse_u64_arg(val, &n) < 0) {
                fprintf(stderr, "kiln: %s takes a non-negative integer, not '%s'\n", a, val);
                return 2;
            }
            if (!strcmp(a, "--org"))
                opts.organization_id = n;
            else if (!strcmp(a, "--project"))
                opts.project_id = n;
            else if (!strcmp(a, "--received"))
                opts.received = (int64_t)n;
            else
                opts.retention_days = (int32_t)(n > 36500 ? 36500 : n);
            i++;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "kiln: unknown option '%s'; see 'kiln process --help'\n", a);
            return 2;
        } else if (in_path) {
            fprintf(stderr, "kiln: one input file only; see 'kiln process --help'\n");
            return 2;
        } else {
            in_path = a;
        }
        continue;
    need_value:
        fprintf(stderr, "kiln: option '%s' needs a value; see 'kiln process --help'\n", a);
        return 2;
    }
    if (!in_path) {
        fprintf(stderr, "kiln: no input; usage: kiln process [options] FILE|-\n");
        return 2;
    }

    int out_fd = 1;
    if (out_path && strcmp(out_path, "-") != 0) {
        out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out_fd < 0) {
            perror("kiln: cannot open output");
            return 2;
        }
    }
    kl_buf_init(&r.out, 1u << 20);
    kl_buf_set_sink(&r.out, kl_sink_fd, (void *)(intptr_t)out_fd);
    kl_buf_init(&r.errbuf, 1u << 20);

    struct kl_arena arena;
    kl_arena_init(&arena);
    struct kl_err err = KL_ERR_INIT;
    char *data = NULL, *txdata = NULL;
    size_t len = 0, txlen = 0;
    size_t max = envelope || msgpack ? MAX_ENVELOPE_BYTES : KL_MAX_PROFILE_BYTES;
    if (kl_read_file(in_path, max, &data, &len, &err) < 0) {
        if (err.reason == KL_R_IO_READ) {
            kl_cli_error(&err);
            r.status = 2;
            goto out;
        }
        /* too large: an invalid item with Relay's reason, outcomes included */
        struct kl_process_result res;
        memset(&res, 0, sizeof res);
        res.err = err;
        res.is_chunk = opts.item_type == KL_ITEM_PROFILE_CHUNK;
        res.outcomes[0] =
            (struct kl_outcome){KL_OUTCOME_INVALID, err.reason,
                                res.is_chunk ? KL_CAT_PROFILE_CHUNK : KL_CAT_PROFILE, 1, ""};
        res.n_outcomes = 1;
        report(&r, NULL, &res);
        goto out;
    }
    if (tx_path) {
        if (kl_read_file(tx_path, 10u * 1024 * 1024, &txdata, &txlen, &err) < 0) {
            kl_cli_error(&err);
            r.status = 2;
            goto out;
        }
        opts.tx = kl_tx_event_parse(&arena, txdata, txlen, &err);
        if (!opts.tx) {
            kl_cli_error(&err);
            r.status = 2;
            goto out;
        }
    }
    if (msgpack) {
        struct kl_relay_msg *m = kl_relay_msg_parse(&arena, data, len, &err);
        if (!m) {
            fprintf(stderr, "invalid: %s (%s)\n", kl_reason_str(err.reason), err.msg);
            r.status = 1;
            goto out;
        }
        opts.organization_id = m->organization_id;
        opts.project_id = m->project_id;
        opts.received = m->received;
        opts.retention_days = (int32_t)m->retention_days;
        opts.item_type =
            kl_str_eq_c(m->type, "profile_chunk") ? KL_ITEM_PROFILE_CHUNK : KL_ITEM_PROFILE;
        struct kl_process_result res;
        kl_process_run(&arena, m->payload, m->payload_len, &opts, &res);
        report(&r, NULL, &res);
    } else if (envelope) {
        const char *body = data;
        size_t blen = len;
        enum kl_encoding enc = kl_encoding_sniff(data, len);
        if (enc != KL_ENC_IDENTITY) {
            char *dec;
            if (kl_decompress(&arena, enc, data, len, MAX_ENVELOPE_BYTES, &dec, &blen, &err) < 0) {
                kl_cli_error(&err);
                r.status = 1;
                goto out;
            }
            body = dec;
        }
        struct kl_envelope_limits lim;
        kl_envelope_limits_default(&lim);
        struct kl_envelope *env = kl_envelope_parse(&arena, body, blen, &lim, &err);
        if (!env) {
            fprintf(stderr, "invalid: %s (%s)\n", kl_reason_str(err.reason), err.msg);
            r.status = 1;
            goto out;
        }
        if (kl_process_envelope(&arena, env, &opts, report, &r) == 0)
            fprintf(stderr, "kiln: the envelope has no profile or profile_chunk item\n");
    } else {
        struct kl_process_result res;
        kl_process_run(&arena, data, len, &opts, &res);
        report(&r, NULL, &res);
    }
out:
    kl_buf_flush(&r.out);
    kl_buf_release(&r.out);
    kl_buf_release(&r.errbuf);
    kl_arena_release(&arena);
    free(data);
    free(txdata);
    if (out_fd != 1)
        close(out_fd);
    return r.status;
}

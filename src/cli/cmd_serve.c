/* cmd_serve.c - `kiln serve`: run the service until SIGINT/SIGTERM */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/str.h"
#include "cli/cli.h"
#include "server/server.h"

const char kl_cmd_serve_help[] =
    "usage: kiln serve [--data DIR] [--listen ADDR:PORT] [--workers N] [options]\n"
    "\n"
    "Receive profiles from unmodified Sentry SDKs and keep them. Point an SDK's DSN at\n"
    "kiln (the first start creates organization 'default', project 'default' (id 1) and a\n"
    "key, and prints the DSN on standard output). Every envelope is written and fsync'd to\n"
    "the queue under DIR before it is acknowledged; workers then validate, normalize and\n"
    "store each profile and record exactly one outcome per item, and link `span` items and\n"
    "transactions that name a profiler to that profiler's continuous-profiling chunks.\n"
    "\n"
    "ingest endpoints:\n"
    "  POST /api/<project_id>/envelope/         Sentry envelopes (auth: sentry_key query,\n"
    "                                            X-Sentry-Auth, Authorization, or the\n"
    "                                            envelope's dsn); gzip, deflate, zstd\n"
    "                                            bodies; CORS for browsers\n"
    "  POST /api/<project_id>/relay-message/    one Relay->Sentry ingest-profiles message\n"
    "                                            (msgpack; same auth; its organization and\n"
    "                                            project must be the key's)\n"
    "\n"
    "read endpoints (<org> and <project> are slugs; the first ones are 'default'):\n"
    "  GET /api/0/projects/<org>/<project>/profiling/profiles/<profile_id>/\n"
    "        one profile, speedscope view (?format=sample: the stored form)\n"
    "  GET /api/0/projects/<org>/<project>/profiling/raw_profiles/<profile_id>/\n"
    "  GET /api/0/projects/<org>/<project>/profiling/raw_chunks/<profiler_id>/<chunk_id>/\n"
    "        the stored form of a profile or chunk\n"
    "  GET /api/0/organizations/<org>/profiling/profiles/\n"
    "        list and search (project, query, statsPeriod|start&end, sort, per_page, cursor)\n"
    "  GET /api/0/organizations/<org>/profiling/chunks/\n"
    "        chunks merged over a time range (project, profiler_id, start, end)\n"
    "  GET /api/0/organizations/<org>/profiling/flamegraph/\n"
    "        aggregated flamegraph of every matching profile and chunk (project, query,\n"
    "        statsPeriod|start&end, expand=metrics, format=json|collapsed|svg)\n"
    "  GET /api/0/organizations/<org>/profiling/flamegraph/diff/\n"
    "        differential flamegraph of two queries or periods\n"
    "  GET /api/0/organizations/<org>/profiling/functions/\n"
    "  GET /api/0/organizations/<org>/profiling/function-trends/\n"
    "        slowest functions; functions whose duration changed between two periods\n"
    "  GET /api/0/organizations/<org>/profiling/occurrences/\n"
    "        main-thread I/O, JSON, regex, image decoding and frame-drop occurrences\n"
    "  GET /api/0/organizations/<org>/profiling/spans/\n"
    "        spans linked to continuous-profiling chunks (SDK `span` items, transactions\n"
    "        with a profiler_id): project, profiler_id, transaction, query (transaction:\n"
    "        release: environment:), start&end or statsPeriod, per_page, cursor; each\n"
    "        row's chunks_url fetches its chunks\n"
    "  GET /api/0/organizations/<org>/stats_v2/\n"
    "        outcomes in Sentry's shape (field=sum(quantity), groupBy=outcome|reason|\n"
    "        category|project, statsPeriod)\n"
    "  GET /health                              200 {\"status\":\"ok\"}\n"
    "  GET /metrics                             Prometheus text\n"
    "\n"
    "A full queue answers 429 with Retry-After and X-Sentry-Rate-Limits.\n"
    "\n"
    "options:\n"
    "  --data DIR             data directory: kiln.db (SQLite), blobs/, queue/\n"
    "                         (default ./kiln-data)\n"
    "  --listen ADDR:PORT     address to listen on (default 127.0.0.1:8080; port 0 picks a\n"
    "                         free one)\n"
    "  --workers N            processing threads (default: one per core)\n"
    "  --queue-max-mb N       bytes of unprocessed envelopes held before answering 429\n"
    "                         (default 1024)\n"
    "  --queue-max-records N  envelopes held before answering 429 (default 100000)\n"
    "  --inflight-max-mb N    request bodies held in memory at once, as received and\n"
    "                         decoded, before answering 503 (default 1024)\n"
    "  --public-host HOST     host[:port] to print in the DSN (default: the listen address)\n"
    "  --log-level LEVEL      debug | info | warn | error (default info)\n"
    "\n"
    "SIGINT or SIGTERM stops gracefully: no new requests, answers in flight are sent,\n"
    "workers finish their envelope; whatever is still queued is processed at the next start.\n"
    "Logs go to standard error, one key=value line per event.\n";

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

int kl_cmd_serve(int argc, char **argv)
{
    struct kl_server_config cfg = {0};
    cfg.data_dir = "./kiln-data";
    cfg.addr = "127.0.0.1";
    cfg.port = 8080;
    char addr[256];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "kiln: option '%s' needs a value; see 'kiln serve --help'\n", a);
            return 2;
        }
        uint64_t n = 0;
        bool numeric = kl_parse_u64(kl_str_c(v), &n);
        i++;
        if (!strcmp(a, "--data")) {
            cfg.data_dir = v;
        } else if (!strcmp(a, "--listen")) {
            const char *colon = strrchr(v, ':');
            uint64_t port;
            if (!colon || !kl_parse_u64(kl_str_c(colon + 1), &port) || port > 65535 || colon == v ||
                (size_t)(colon - v) >= sizeof addr) {
                fprintf(stderr, "kiln: --listen takes ADDR:PORT, e.g. 127.0.0.1:8080\n");
                return 2;
            }
            memcpy(addr, v, (size_t)(colon - v));
            addr[colon - v] = '\0';
            cfg.addr = addr;
            cfg.port = (uint16_t)port;
        } else if (!strcmp(a, "--workers") && numeric && n >= 1 && n <= 64) {
            cfg.workers = (unsigned)n;
        } else if (!strcmp(a, "--queue-max-mb") && numeric && n >= 1) {
            cfg.queue_max_bytes = n << 20;
        } else if (!strcmp(a, "--inflight-max-mb") && numeric && n >= 1 && n <= (1u << 20)) {
            cfg.inflight_max_bytes = n << 20;
        } else if (!strcmp(a, "--queue-max-records") && numeric && n >= 1) {
            cfg.queue_max_records = n;
        } else if (!strcmp(a, "--public-host")) {
            cfg.public_host = v;
        } else if (!strcmp(a, "--log-level")) {
            if (!strcmp(v, "debug"))
                kl_log_min_level = KL_LOG_DEBUG;
            else if (!strcmp(v, "info"))
                kl_log_min_level = KL_LOG_INFO;
            else if (!strcmp(v, "warn"))
                kl_log_min_level = KL_LOG_WARN;
            else if (!strcmp(v, "error"))
                kl_log_min_level = KL_LOG_ERROR;
            else {
                fprintf(stderr, "kiln: --log-level takes debug, info, warn or error\n");
                return 2;
            }
        } else {
            fprintf(stderr, "kiln: bad option '%s %s'; see 'kiln serve --help'\n", a, v);
            return 2;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct kl_err err = KL_ERR_INIT;
    struct kl_server *s = kl_server_start(&cfg, &err);
    if (!s) {
        kl_cli_error(&err);
        fprintf(stderr,
                "kiln: could not start; check that '%s' is writable and the address "
                "is free (--data, --listen)\n",
                cfg.data_dir);
        return 2;
    }
    struct kl_log_ctx ctx = {NULL, "serve"};
    printf("kiln is listening on http://%s:%u\nDSN: %s\n", cfg.addr, (unsigned)kl_server_port(s),
           kl_server_dsn(s));
    fflush(stdout);
    kl_log(KL_LOG_INFO, &ctx, "msg=started data=%s port=%u", cfg.data_dir,
           (unsigned)kl_server_port(s));
    while (!stop_signal)
        sleep(1); /* interrupted by the signal; a signal between the test and the call
                     costs at most a second */
    kl_log(KL_LOG_INFO, &ctx, "msg=\"stopping\" signal=%d", (int)stop_signal);
    kl_server_stop(s);
    kl_log(KL_LOG_INFO, &ctx, "msg=stopped");
    return 0;
}

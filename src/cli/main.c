/* main.c - `kiln`: dispatch to a subcommand from one table (git's commands[] pattern) */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define KL_VERSION "0.1.0"

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("kiln %s\n", KL_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv);

static const struct kl_cmd commands[] = {
    {"serve", "receive profiles from Sentry SDKs over HTTP, process and store them", kl_cmd_serve,
     kl_cmd_serve_help},
    {"process", "run one profile (or an envelope's) through the pipeline", kl_cmd_process,
     kl_cmd_process_help},
    {"project", "create and list projects and their DSN keys", kl_cmd_project, kl_cmd_project_help},
    {"profiles", "list stored profiles and chunks", kl_cmd_profiles, kl_cmd_profiles_help},
    {"outcomes", "sum the outcomes recorded in a data directory", kl_cmd_outcomes,
     kl_cmd_outcomes_help},
    {"flamegraph",
     "aggregated, differential or single-profile flamegraphs (speedscope, "
     "collapsed, SVG)",
     kl_cmd_flamegraph, kl_cmd_flamegraph_help},
    {"query", "slowest functions, function trends, occurrences, profile search", kl_cmd_query,
     kl_cmd_query_help},
    {"version", "print the version", cmd_version, "usage: kiln version\n"},
    {"help", "show help for kiln or a command", cmd_help, "usage: kiln help [COMMAND]\n"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: kiln <command> [options]\n\n"
               "kiln is a profiling backend: it takes profiles as Sentry SDKs send them,\n"
               "validates and normalizes them as Sentry does, and records one outcome each.\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'kiln <command> --help' for a command's options.\n");
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            fputs(commands[i].help, stdout);
            return 0;
        }
    }
    fprintf(stderr, "kiln: unknown command '%s'; see 'kiln --help'\n", argv[1]);
    return 2;
}

void kl_cli_error(const struct kl_err *err)
{
    fprintf(stderr, "kiln: %s (%s)\n", err->msg[0] ? err->msg : "error",
            kl_reason_str(err->reason));
}

void kl_cli_put_line(struct kl_buf *b)
{
    kl_buf_putc(b, '\n');
    fwrite(b->ptr, 1, b->len, stdout);
    kl_buf_reset(b);
}

int kl_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
        return cmd_version(0, NULL);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            if (kl_cli_wants_help(argc - 1, argv + 1)) {
                fputs(commands[i].help, stdout);
                return 0;
            }
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "kiln: unknown command '%s'; see 'kiln --help'\n", argv[1]);
    return 2;
}

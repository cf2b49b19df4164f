/* cli.h - the kiln command line: one table of subcommands, one file per command
 *
 * What: `kiln <command> [options]`. main.c holds the table (name, summary, function, help);
 * each cmd_<name>.c implements one command. Commands print `kiln: <message> (<reason>)` on
 * errors and return the process exit status: 0 success, 1 rejected input, 2 usage or I/O.
 */
#ifndef KL_CLI_CLI_H
#define KL_CLI_CLI_H

#include "base/buf.h"
#include "base/err.h"

typedef int kl_cmd_fn(int argc, char **argv);

struct kl_cmd {
    const char *name;
    const char *summary;
    kl_cmd_fn *run;
    const char *help; /* full help text, printed by `kiln <cmd> --help` and `kiln help <cmd>` */
};

int kl_cmd_process(int argc, char **argv);
extern const char kl_cmd_process_help[];
int kl_cmd_serve(int argc, char **argv);
extern const char kl_cmd_serve_help[];
int kl_cmd_project(int argc, char **argv);
extern const char kl_cmd_project_help[];
int kl_cmd_outcomes(int argc, char **argv);
extern const char kl_cmd_outcomes_help[];
int kl_cmd_profiles(int argc, char **argv);
extern const char kl_cmd_profiles_help[];
int kl_cmd_flamegraph(int argc, char **argv);
extern const char kl_cmd_flamegraph_help[];
int kl_cmd_query(int argc, char **argv);
extern const char kl_cmd_query_help[];

/* Print "kiln: <msg> (<reason>)" to stderr. */
void kl_cli_error(const struct kl_err *err);
/* End the JSON line in b, write it to stdout and empty b (the JSON-lines commands). */
void kl_cli_put_line(struct kl_buf *b);
/* Whether argv has -h or --help before any "--". */
int kl_cli_wants_help(int argc, char **argv);

#endif

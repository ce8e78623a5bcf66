/* cli_engine_opts.h — the engine options `fraudwatch replay` and `fraudwatch
 * replay --compare` share, parsed in one place (cli_engine_opts.c).
 *
 * Same names, ranges, defaults and messages for both commands: a backtest
 * must mean by --lateness or --max-keys what a replay means.  Each command
 * lists FW_CLI_ENGINE_OPTIONS in its getopt_long table, hands every option
 * to fw_cli_engine_opt() first, and copies the result into its own
 * options. */
#ifndef FRAUDWATCH_CLI_ENGINE_OPTS_H
#define FRAUDWATCH_CLI_ENGINE_OPTS_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t threads;          /* --threads (-t): workers (per rule set in a compare) */
    size_t max_event_bytes;    /* --max-event-bytes */
    int64_t lateness_ms;       /* --lateness, given in seconds */
    uint64_t max_keys;         /* --max-keys: key state budget */
    uint32_t max_reported;     /* --max-reported: malformed lines printed one by one */
} fw_cli_engine;

/* getopt_long values of the shared long options; a command numbers its own
 * from FW_CLI_OPT_OWN. */
enum {
    FW_CLI_OPT_MAX_BYTES = 256,
    FW_CLI_OPT_LATENESS,
    FW_CLI_OPT_MAX_REPORTED,
    FW_CLI_OPT_MAX_KEYS,
    FW_CLI_OPT_MAX_REGEXES,
    FW_CLI_OPT_OWN
};

#define FW_CLI_ENGINE_OPTIONS                                                   \
    { "threads", required_argument, NULL, 't' },                                \
    { "max-event-bytes", required_argument, NULL, FW_CLI_OPT_MAX_BYTES },       \
    { "lateness", required_argument, NULL, FW_CLI_OPT_LATENESS },               \
    { "max-reported", required_argument, NULL, FW_CLI_OPT_MAX_REPORTED },       \
    { "max-keys", required_argument, NULL, FW_CLI_OPT_MAX_KEYS },               \
    { "max-regex-per-event", required_argument, NULL, FW_CLI_OPT_MAX_REGEXES }

/* The defaults (pipeline.h's, 1 thread, 100 lines reported). */
fw_cli_engine fw_cli_engine_defaults(void);

/* Applies option `opt` (getopt_long's return) with argument `arg`:
 * 0 applied, 2 a value out of range (said on stderr after `me`, e.g.
 * "fraudwatch replay"), -1 not one of the shared options.
 * --max-regex-per-event sets the process's limit (ruleset.h). */
int fw_cli_engine_opt(fw_cli_engine *e, int opt, const char *arg, const char *me);

#endif

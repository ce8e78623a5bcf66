/* cli_history.h — the CLI of the rule history (src/cli_history.c): the
 * `rules` subcommands push, history, show, diff and rollback. */
#ifndef FRAUDWATCH_CLI_HISTORY_H
#define FRAUDWATCH_CLI_HISTORY_H

#include <stdbool.h>

/* Is `sub` (the word after `rules`) one of these subcommands? */
bool fw_cli_history_handles(const char *sub);
/* Runs it: argv[0] is the subcommand.  Returns the exit status. */
int fw_cli_history(int argc, char **argv);

#endif

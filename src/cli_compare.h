/* cli_compare.h — `fraudwatch replay --compare`'s command line (cli_compare.c). */
#ifndef FRAUDWATCH_CLI_COMPARE_H
#define FRAUDWATCH_CLI_COMPARE_H

#include <stdbool.h>

/* Whether replay's arguments ask for a compare (an argument "--compare"
 * before any "--"). */
bool fw_cli_is_compare(int argc, char **argv);
/* `replay --compare ...`: argv[0] is "replay"; `usage` is replay's help
 * text (it documents the compare options too).  Returns the exit status:
 * 0 done, 1 a rule set or the truth file refused or the input unreadable,
 * 2 a usage error. */
int fw_cli_replay_compare(int argc, char **argv, const char *usage);

#endif

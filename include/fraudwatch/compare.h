/* fraudwatch — `fraudwatch replay --compare`: a backtest of a rule change.
 *
 * Two rule sets (before and after) over the same events in one pass over
 * the input; per rule, the alerts both sets give, those only the old set
 * gives and those only the new one gives (matched by alert_id), with a few
 * example lines of each; with a truth file of outcomes, precision and
 * recall per rule for both sets.  The report goes to `out` as text or JSON
 * (docs/backtest.md has the exact formats and definitions), written in one
 * piece at the end, so an error never leaves half a report. */
#ifndef FRAUDWATCH_COMPARE_H
#define FRAUDWATCH_COMPARE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct fw_compare_opts {
    const char *before_dir;    /* OLD_DIR */
    const char *after_dir;     /* NEW_DIR */
    const char *input;         /* path, or "-" / NULL for stdin */
    const char *truth;         /* truth file, or NULL */
    uint32_t threads;          /* worker threads per rule set */
    size_t max_event_bytes;
    int64_t lateness_ms;
    uint64_t max_keys;         /* key state budget of each set (0: none) */
    uint32_t examples;         /* example alert lines per rule and category */
    bool json;                 /* the report as one JSON object */
    FILE *out;                 /* the report */
    FILE *log;                 /* malformed lines and the summary */
    uint32_t max_reported;     /* malformed lines printed individually */
} fw_compare_opts;

#define FW_COMPARE_DEFAULT_EXAMPLES 3u
#define FW_COMPARE_MAX_EXAMPLES 1000u

/* 0 on success (malformed events are not failures); -1 with a message
 * (a rule set or the truth file refused, the input unreadable, the report
 * not written). */
int fw_compare_run(const fw_compare_opts *o, char *err, size_t errlen);

#endif

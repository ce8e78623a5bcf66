/* fraudwatch — `fraudwatch replay`: a JSONL file through the engine.
 *
 * The embedded mode: rules from a directory, events from a file or stdin,
 * alerts as JSONL on an output stream, a summary on a log stream.  It runs
 * the same pipeline as the daemon, so a replay of what a topic held gives
 * the alerts the daemon gave (SPEC §5). */
#ifndef FRAUDWATCH_REPLAY_H
#define FRAUDWATCH_REPLAY_H

#include <stdint.h>
#include <stdio.h>

typedef struct fw_replay_opts {
    const char *rules_dir;
    const char *input;         /* path, or "-" / NULL for stdin */
    uint32_t threads;
    size_t max_event_bytes;
    int64_t lateness_ms;
    FILE *out;                 /* alerts */
    FILE *log;                 /* malformed lines and the summary */
    uint32_t max_reported;     /* malformed lines printed individually */
    uint64_t max_keys;         /* key state budget (0: none) */
    const char *snoozes_file;  /* --snoozes FILE (NULL: none; snooze.h) */
} fw_replay_opts;

typedef struct fw_replay_stats {
    uint64_t lines;
    uint64_t events;           /* non-blank lines */
    uint64_t malformed;
    uint64_t alerts;
    uint64_t shadow;           /* alerts flagged shadow or snoozed */
    uint64_t snoozed;          /* alerts flagged snoozed */
    uint64_t faults;
    uint64_t clock_ahead;      /* events > lateness ahead of the stream clock */
    uint64_t clock_behind;     /* events > lateness behind it */
    uint64_t evictions;        /* keys evicted by the state budget */
    double seconds;
} fw_replay_stats;

/* 0 on success (malformed events are not failures); -1 with a message. */
int fw_replay_run(const fw_replay_opts *o, fw_replay_stats *st, char *err,
                  size_t errlen);

#endif

/* hostile_util.h — driving the engine with messages of any size and content
 * (NUL bytes included) and with the pipeline's default limits, for
 * tests/test_hostile.c.  tests/harness.c splits events at NULs and caps them
 * at 4 KiB, which is right for the engine tests and wrong here. */
#ifndef FW_TEST_HOSTILE_UTIL_H
#define FW_TEST_HOSTILE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "fraudwatch/pipeline.h"
#include "fraudwatch/ruleset.h"
#include "harness.h"

typedef struct fwh_msg {
    const char *p;
    size_t n;
} fwh_msg;

/* A message from a C string (no NUL inside). */
fwh_msg fwh_str(const char *s);

/* Loads one rules file and optionally one watchlist NAME.list. */
fw_ruleset *fwh_load(const char *rules, size_t rules_len, const char *list_name,
                     const char *list, size_t list_len, char *err, size_t errlen);

/* Runs the messages, in order, through a pipeline with options `o` (NULL:
 * two workers, every other option at its default — 1 MiB events, batches of
 * 1024).  Message i is reported as line i + 1 in res->bad_lines.  An alert
 * that is not one valid UTF-8 JSON object is stored as NULL, its text kept
 * for fwh_check_alerts(). */
void fwh_run(fw_ruleset *rs, const fw_pipeline_opts *o, const fwh_msg *msgs,
             size_t n, fwt_result *res);

/* Fails the test (naming the alert) if any alert of res was not valid JSON. */
void fwh_check_alerts(const fwt_result *res);

/* The reason recorded for line `line` (1-based), or NULL. */
const char *fwh_reason(const fwt_result *res, uint32_t line);

/* `unit` repeated `times` times, then `tail` (malloc'd, NUL-terminated). */
char *fwh_repeat(const char *head, const char *unit, size_t times, const char *tail);

/* fw_ruleset_describe into a malloc'd string. */
char *fwh_describe(const fw_ruleset *rs);

/* Peak resident set size of the process so far, in KiB. */
long fwh_peak_rss_kib(void);

#endif

/* harness.h — running the engine in-process for tests.
 *
 * fwt_run() loads a rule set from in-memory files, feeds events (JSONL text)
 * through a real pipeline with N workers and returns the alerts, parsed, in
 * output order.  Tests then assert on alert members. */
#ifndef FW_TEST_HARNESS_H
#define FW_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "fraudwatch/driver.h"
#include "fraudwatch/ruleset.h"
#include "source_memory.h"

typedef struct fwt_tally {
    char rule[72];
    char mode[8];
    uint64_t n[FW_RC_N];
} fwt_tally;

typedef struct fwt_result {
    cJSON **alerts;
    size_t nalerts;
    bool *to_shadow;            /* per alert: the view said shadow or snoozed (the
                                   shadow output's), checked against its JSON flags */
    size_t flag_mismatches;     /* views whose flags differ from the JSON's */
    fwt_tally tallies[32];      /* per rule and mode (fw_driver_rule_tally) */
    size_t ntallies;
    size_t malformed;
    uint32_t bad_lines[64];     /* line numbers of the first malformed lines */
    const char *bad_reasons[64];
    uint64_t faults;
    uint64_t evictions;         /* keys evicted by the state budget */
} fwt_result;

/* The key state budget of the pipelines fwt_run* build (0: none). */
extern uint64_t fwt_max_keys;
/* The snoozes the pipelines fwt_run* build apply (NULL: none; borrowed). */
extern fw_snoozes *fwt_snoozes;
/* The tally of rule_id (mode NULL: any), or NULL. */
const fwt_tally *fwt_tally_of(const fwt_result *res, const char *rule_id, const char *mode);

/* The collecting sink: alerts parsed into res->alerts (strict: an alert
 * that is not one line of valid UTF-8 JSON holding one object is kept as
 * NULL, its text in first_bad), malformed messages into res->bad_*. */
typedef struct fwt_collector {
    fwt_result *res;
    bool strict;
    char first_bad[512];
} fwt_collector;
extern const fw_sink_ops fwt_collect_sink;
/* A driver over the messages of `src` into `c`; then fwt_drive runs it to
 * the end and adds its faults and evictions to res. */
fw_driver *fwt_driver(fw_ruleset *rs, const fw_pipeline_opts *o, fw_mem_source *src,
                      fwt_collector *c, char *err, size_t errlen);
void fwt_drive(fw_driver *d, fwt_result *res);

/* rules: one rules file's JSON text; lists: NULL or "name=a,b,c;name2=x". */
int fwt_run(const char *rules, const char *lists, const char *events,
            uint32_t threads, fwt_result *res, char *err, size_t errlen);
int fwt_run_files(const fw_rulefile *files, size_t nfiles, const char *events,
                  uint32_t threads, fwt_result *res, char *err, size_t errlen);
/* Lines before `split` through a pipeline of threads1 workers, a checkpoint
 * saved and loaded into a new pipeline of threads2 workers, then the rest. */
int fwt_run_checkpointed(const char *rules, const char *events, uint64_t split,
                         uint32_t threads1, uint32_t threads2, fwt_result *res,
                         char *err, size_t errlen);
void fwt_result_free(fwt_result *res);

/* Number of alerts with this rule_id (and subject / event_id when not NULL). */
size_t fwt_count(const fwt_result *res, const char *rule_id,
                 const char *subject, const char *event_id);
/* The first alert of rule_id on event_id, or NULL. */
const cJSON *fwt_find(const fwt_result *res, const char *rule_id,
                      const char *event_id);
/* Alert member as a string / number (evidence members by "evidence.count"). */
const char *fwt_str(const cJSON *alert, const char *path);
double fwt_num(const cJSON *alert, const char *path);

/* "ev(id, type, ts, extra)" → a JSON event line; extra is ",\"k\":v..." */
char *fwt_events(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* xorshift64: the tests' reproducible random numbers (a seeded *x, never 0). */
static inline uint64_t fwt_xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

#endif

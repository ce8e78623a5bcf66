/* replay.c — `fraudwatch replay`: a JSONL file through the engine.
 *
 * Owns the assembly of the embedded mode: the rules directory becomes a
 * rule set, the file a source (source_file.c: lines, blank ones skipped,
 * oversize ones reported), stdout a sink (sink_lines.c: alert lines,
 * malformed lines reported by number), and the driver (driver.c) runs the
 * same loop and pipeline as the daemon, without checkpoints.  Output order
 * is input order, so a replay is reproducible to the byte apart from
 * detected_ts; then the summary on the log stream. */
#include "fraudwatch/replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/clock.h"
#include "fraudwatch/driver.h"
#include "fraudwatch/ruleset.h"
#include "fraudwatch/snooze.h"
#include "sink_lines.h"
#include "source_file.h"

int fw_replay_run(const fw_replay_opts *o, fw_replay_stats *st, char *err,
                  size_t errlen)
{
    memset(st, 0, sizeof *st);
    fw_ruleset *rs = NULL;
    fw_file_source *src = NULL;
    fw_lines_sink *sink = NULL;
    fw_driver *d = NULL;
    fw_snoozes *snoozes = NULL;
    int rc = -1;

    if (fw_ruleset_load_dir(o->rules_dir, 1, &rs, err, errlen) != 0)
        return -1;
    /* Snoozes name rules of the set: read after it, refused whole. */
    if (o->snoozes_file &&
        fw_snoozes_load_file(o->snoozes_file, rs, &snoozes, err, errlen) != 0)
        goto out;
    src = fw_file_source_open(o->input, o->max_event_bytes, err, errlen);
    if (!src)
        goto out;
    sink = fw_lines_sink_new(o->out, o->log, o->max_reported, fw_ruleset_rule_count(rs));
    fw_driver_opts dopts = {
        .pipeline = { .workers = o->threads,
                      .max_event_bytes = o->max_event_bytes,
                      .lateness_ms = o->lateness_ms,
                      .max_keys = o->max_keys },
        .source = &fw_file_source_ops,
        .source_self = src,
        .sink = &fw_lines_sink_ops,
        .sink_self = sink,
        .rules = rs,
        .snoozes = snoozes,
    };
    d = fw_driver_new(&dopts, err, errlen);
    if (!d)
        goto out;
    int64_t t0 = fw_mono_ns();
    int run = fw_driver_run(d, NULL);
    st->seconds = (double)(fw_mono_ns() - t0) / 1e9;
    const fw_driver_stats *ds = fw_driver_stats_get(d);
    st->lines = fw_file_source_lines(src);
    st->events = fw_file_source_events(src);
    st->malformed = ds->malformed;
    st->alerts = ds->alerts;
    for (size_t i = 0; i < fw_driver_rule_tally_count(d); i++) {
        st->shadow += fw_driver_rule_tally(d, i)->n[FW_RC_SHADOW];
        st->snoozed += fw_driver_rule_tally(d, i)->n[FW_RC_SNOOZED];
    }
    st->faults = ds->faults;
    st->clock_ahead = ds->clock_ahead;
    st->clock_behind = ds->clock_behind;
    st->evictions = ds->evictions;
    if (fflush(o->out) != 0 || fw_lines_sink_write_failed(sink)) {
        snprintf(err, errlen, "writing alerts failed: %s", strerror(errno));
        goto out;
    }
    if (run != 0) {
        snprintf(err, errlen, "%s", fw_driver_fatal(d));
        goto out;
    }

    if (st->malformed > o->max_reported)
        fprintf(o->log, "fraudwatch: ... %llu more malformed lines not shown\n",
                (unsigned long long)(st->malformed - o->max_reported));
    fprintf(o->log,
            "fraudwatch replay: %llu events (%llu malformed) in %.3f s, "
            "%.0f events/s, %u thread%s\n",
            (unsigned long long)st->events, (unsigned long long)st->malformed,
            st->seconds, st->seconds > 0 ? (double)st->events / st->seconds : 0.0,
            o->threads, o->threads == 1 ? "" : "s");
    fprintf(o->log, "alerts: %llu (live %llu, shadow %llu, snoozed %llu)\n",
            (unsigned long long)st->alerts, (unsigned long long)(st->alerts - st->shadow),
            (unsigned long long)(st->shadow - st->snoozed), (unsigned long long)st->snoozed);
    /* Per rule (docs/observability.md, "Per-rule metrics"): shadow counts
     * the alerts that went to the shadow output, snoozed ones included. */
    fprintf(o->log, "  %-12s %-6s %10s %8s %10s %8s %8s %10s\n", "rule", "mode", "matched",
            "alerts", "suppressed", "snoozed", "shadow", "regex_hits");
    for (size_t i = 0; i < fw_driver_rule_tally_count(d); i++) {
        const fw_rule_tally *t = fw_driver_rule_tally(d, i);
        fprintf(o->log, "  %-12s %-6s %10llu %8llu %10llu %8llu %8llu %10llu\n", t->rule,
                t->mode, (unsigned long long)t->n[FW_RC_MATCHED],
                (unsigned long long)t->n[FW_RC_ALERTS],
                (unsigned long long)t->n[FW_RC_SUPPRESSED],
                (unsigned long long)t->n[FW_RC_SNOOZED],
                (unsigned long long)t->n[FW_RC_SHADOW],
                (unsigned long long)t->n[FW_RC_FAULTS]);
    }
    if (st->faults)
        fprintf(o->log, "regex limit hits (counted as no match): %llu\n",
                (unsigned long long)st->faults);
    if (st->clock_ahead || st->clock_behind)
        fprintf(o->log, "events more than the lateness away from the stream clock: "
                        "%llu ahead, %llu behind (docs/rules.md, \"Event time\")\n",
                (unsigned long long)st->clock_ahead, (unsigned long long)st->clock_behind);
    if (st->evictions)
        fprintf(o->log, "keys evicted by the state budget (--max-keys %llu): %llu "
                        "(docs/limits.md, \"Key state budget\")\n",
                (unsigned long long)o->max_keys, (unsigned long long)st->evictions);
    /* The state still held at the end (keys whose window or sequence has
     * not expired): what the bench sets memory against. */
    fprintf(o->log, "live keys: %zu\n", fw_pipeline_keys(fw_driver_pipeline(d)));
    rc = 0;
out:
    /* The process exits next: its keys' state goes with it (a third of the
     * run's time at 600,000 keys if freed one by one). */
    fw_driver_free_at_exit(d);
    fw_lines_sink_free(sink);
    fw_file_source_close(src);
    fw_ruleset_unref(rs);
    fw_snoozes_unref(snoozes);
    return rc;
}

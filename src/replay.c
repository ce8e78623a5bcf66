/* replay.c — JSONL file → pipeline → JSONL alerts.
 *
 * Owns the input file and the output stream.  The calling thread is the
 * pipeline's feeder: it cuts the input into lines (a line longer than the
 * event size limit is skipped over without being held in memory, and
 * reported), fills batches, and retires them in order, writing their alerts
 * and reporting their malformed lines by line number.  Output order is input
 * order, so a replay is reproducible to the byte apart from detected_ts. */
#include "fraudwatch/replay.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fraudwatch/event.h"
#include "fraudwatch/pipeline.h"
#include "fraudwatch/ruleset.h"

#define READ_CHUNK (1u << 20)

struct reader {
    FILE *f;
    char *buf;
    size_t cap, start, end;
    bool eof;
    bool error;
    size_t max;
};

/* Next line without its newline.  Returns false at the end.  *oversize is
 * set (and *line NULL) for a line longer than the limit; *len is its size. */
static bool next_line(struct reader *r, const char **line, size_t *len,
                      bool *oversize)
{
    *oversize = false;
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl) {
            *line = r->buf + r->start;
            *len = (size_t)(nl - *line);
            r->start += *len + 1;
            return true;
        }
        if (r->eof) {
            if (r->start == r->end)
                return false;
            *line = r->buf + r->start;
            *len = r->end - r->start;
            r->start = r->end;
            return true;
        }
        if (r->end - r->start > r->max) {
            /* Too long: drop what we hold and skip to the next newline. */
            size_t skipped = r->end - r->start;
            r->start = r->end = 0;
            for (;;) {
                size_t got = fread(r->buf, 1, r->cap, r->f);
                if (got == 0) {
                    r->eof = true;
                    r->error = ferror(r->f);
                    break;
                }
                char *e = memchr(r->buf, '\n', got);
                if (e) {
                    skipped += (size_t)(e - r->buf);
                    r->start = (size_t)(e - r->buf) + 1;
                    r->end = got;
                    break;
                }
                skipped += got;
            }
            *line = NULL;
            *len = skipped;
            *oversize = true;
            return true;
        }
        /* Need more input: compact, then read. */
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        size_t got = fread(r->buf + r->end, 1, r->cap - r->end, r->f);
        if (got == 0) {
            r->eof = true;
            r->error = ferror(r->f);
        }
        r->end += got;
    }
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

struct output {
    const fw_replay_opts *o;
    fw_replay_stats *st;
    uint64_t *per_rule;
    bool write_failed;
};

static void drain(struct output *out, fw_batch *b)
{
    fw_alert_iter it;
    fw_alert_view a;
    fw_batch_alerts_begin(b, &it);
    while (fw_batch_alerts_next(b, &it, &a)) {
        if (fwrite(a.json, 1, a.len, out->o->out) != a.len)
            out->write_failed = true;
        out->per_rule[a.rule]++;
        out->st->alerts++;
    }
    uint32_t nbad = fw_batch_malformed_count(b);
    for (uint32_t i = 0; i < nbad; i++) {
        uint32_t seq;
        const char *reason;
        fw_batch_malformed(b, i, &seq, &reason);
        out->st->malformed++;
        if (out->st->malformed <= out->o->max_reported)
            fprintf(out->o->log, "fraudwatch: line %llu: malformed event: %s\n",
                    (unsigned long long)fw_batch_tag(b, seq), reason);
    }
    out->st->faults += fw_batch_faults(b);
    uint32_t ahead, behind;
    fw_batch_clock_outliers(b, &ahead, &behind);
    out->st->clock_ahead += ahead;
    out->st->clock_behind += behind;
    out->st->evictions += fw_batch_evictions(b);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int fw_replay_run(const fw_replay_opts *o, fw_replay_stats *st, char *err,
                  size_t errlen)
{
    memset(st, 0, sizeof *st);
    fw_ruleset *rs = NULL;
    fw_pipeline *p = NULL;
    struct reader r = { .max = o->max_event_bytes };
    uint64_t *per_rule = NULL;
    int rc = -1;

    if (fw_ruleset_load_dir(o->rules_dir, 1, &rs, err, errlen) != 0)
        return -1;
    bool from_stdin = !o->input || strcmp(o->input, "-") == 0;
    r.f = from_stdin ? stdin : fopen(o->input, "rb");
    if (!r.f) {
        snprintf(err, errlen, "%s: cannot open the events file: %s", o->input,
                 strerror(errno));
        goto out;
    }
    r.cap = o->max_event_bytes + READ_CHUNK;
    r.buf = malloc(r.cap);
    per_rule = calloc(fw_ruleset_rule_count(rs) + 1, sizeof *per_rule);
    if (!r.buf || !per_rule) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    fw_pipeline_opts po = { .workers = o->threads,
                            .max_event_bytes = o->max_event_bytes,
                            .lateness_ms = o->lateness_ms,
                            .max_keys = o->max_keys };
    p = fw_pipeline_new(&po, err, errlen);
    if (!p)
        goto out;

    struct output out = { .o = o, .st = st, .per_rule = per_rule };
    double t0 = now_s();
    fw_batch *cur = NULL;
    const char *line;
    size_t len;
    bool oversize;
    while (next_line(&r, &line, &len, &oversize)) {
        st->lines++;
        if (!oversize && blank(line, len))
            continue;
        st->events++;
        for (;;) {
            while (!cur && !(cur = fw_pipeline_acquire(p, rs))) {
                fw_batch *done = fw_pipeline_retire(p, true);
                drain(&out, done);
                fw_pipeline_recycle(p, done);
            }
            /* An oversize line is added with its length and no bytes. */
            if (fw_batch_add(cur, oversize ? "" : line, len, st->lines))
                break;
            fw_pipeline_submit(p, cur);
            cur = NULL;
            fw_batch *done;
            while ((done = fw_pipeline_retire(p, false))) {
                drain(&out, done);
                fw_pipeline_recycle(p, done);
            }
        }
    }
    if (cur)
        fw_pipeline_submit(p, cur);
    fw_batch *done;
    while ((done = fw_pipeline_retire(p, true))) {
        drain(&out, done);
        fw_pipeline_recycle(p, done);
    }
    st->seconds = now_s() - t0;
    if (fflush(o->out) != 0)
        out.write_failed = true;
    if (r.error) {
        snprintf(err, errlen, "%s: read error", from_stdin ? "stdin" : o->input);
        goto out;
    }
    if (out.write_failed) {
        snprintf(err, errlen, "writing alerts failed: %s", strerror(errno));
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
    fprintf(o->log, "alerts: %llu\n", (unsigned long long)st->alerts);
    for (size_t i = 0; i < fw_ruleset_rule_count(rs); i++)
        if (per_rule[i])
            fprintf(o->log, "  %-10s %llu\n", fw_ruleset_rule_id(rs, i),
                    (unsigned long long)per_rule[i]);
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
    fprintf(o->log, "live keys: %zu\n", fw_pipeline_keys(p));
    rc = 0;
out:
    fw_pipeline_free(p);
    if (r.f && !from_stdin)
        fclose(r.f);
    free(r.buf);
    free(per_rule);
    fw_ruleset_unref(rs);
    return rc;
}

/* sink_lines.c — alerts as JSON lines on a stream, malformed input
 * reported by line: `fraudwatch replay`'s output, as a driver sink
 * (include/fraudwatch/driver.h).
 *
 * Owns nothing but counts: the streams are the caller's.  An alert is done
 * once written (no delivery marks: a stream has no acknowledgements; a
 * write error is remembered and reported at the end, not per alert). */
#include "sink_lines.h"

#include <stdlib.h>

#include "fraudwatch/alloc.h"

struct fw_lines_sink {
    FILE *out, *log;
    uint32_t max_reported;
    uint64_t malformed;
    uint64_t *per_rule;
    size_t nrules;
    bool write_failed;
};

fw_lines_sink *fw_lines_sink_new(FILE *out, FILE *log, uint32_t max_reported, size_t nrules)
{
    fw_lines_sink *k = fw_xcalloc(1, sizeof *k);
    k->out = out;
    k->log = log;
    k->max_reported = max_reported;
    k->nrules = nrules;
    k->per_rule = fw_xcalloc(nrules + 1, sizeof *k->per_rule);
    return k;
}

void fw_lines_sink_free(fw_lines_sink *k)
{
    if (!k)
        return;
    free(k->per_rule);
    free(k);
}

uint64_t fw_lines_sink_rule_alerts(const fw_lines_sink *k, size_t i)
{
    return i < k->nrules ? k->per_rule[i] : 0;
}

bool fw_lines_sink_write_failed(const fw_lines_sink *k) { return k->write_failed; }

static void alert(void *self, const fw_alert_view *a, const fw_origin *from)
{
    (void)from;
    fw_lines_sink *k = self;
    if (fwrite(a->json, 1, a->len, k->out) != a->len)
        k->write_failed = true;
    if (a->rule < k->nrules)
        k->per_rule[a->rule]++;
}

static void dead_letter(void *self, const char *payload, size_t len, const char *reason,
                        const fw_origin *from)
{
    (void)payload;
    (void)len;
    fw_lines_sink *k = self;
    if (++k->malformed <= k->max_reported)
        fprintf(k->log, "fraudwatch: line %lld: malformed event: %s\n",
                (long long)from->offset, reason);
}

const fw_sink_ops fw_lines_sink_ops = {
    .name = "lines",
    .alert = alert,
    .dead_letter = dead_letter,
};

/* harness.c — see harness.h.  Drives the engine through the same driver
 * loop as replay and the daemon (src/driver.c), from memory. */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/event.h"
#include "fraudwatch/pipeline.h"

/* ---- the collecting sink -------------------------------------------------- */

static cJSON *parse_alert(fwt_collector *c, const char *json, size_t len)
{
    if (!c->strict)
        return cJSON_ParseWithLength(json, len);
    /* One line of valid UTF-8, one JSON object, nothing after it. */
    const char *end = NULL;
    cJSON *j = NULL;
    if (len >= 2 && json[len - 1] == '\n' && fw_utf8_valid(json, len))
        j = cJSON_ParseWithLengthOpts(json, len - 1, &end, 0);
    if (j && (end != json + len - 1 || !cJSON_IsObject(j))) {
        cJSON_Delete(j);
        j = NULL;
    }
    if (!j && !c->first_bad[0])
        snprintf(c->first_bad, sizeof c->first_bad, "%.*s", (int)len, json);
    return j;
}

static void collect_alert(void *self, const fw_alert_view *a, const fw_origin *from)
{
    (void)from;
    fwt_collector *c = self;
    fwt_result *res = c->res;
    res->alerts = realloc(res->alerts, (res->nalerts + 1) * sizeof *res->alerts);
    res->to_shadow = realloc(res->to_shadow, (res->nalerts + 1) * sizeof *res->to_shadow);
    cJSON *j = parse_alert(c, a->json, a->len);
    /* The view's flags (what a sink routes by) say what the JSON says. */
    if (j && (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "shadow")) != a->shadow ||
              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "snoozed")) != a->snoozed))
        res->flag_mismatches++;
    res->to_shadow[res->nalerts] = a->shadow || a->snoozed;
    res->alerts[res->nalerts++] = j;
}

static void collect_dead_letter(void *self, const char *payload, size_t len,
                                const char *reason, const fw_origin *from)
{
    (void)payload;
    (void)len;
    fwt_result *res = ((fwt_collector *)self)->res;
    if (res->malformed < 64) {
        res->bad_lines[res->malformed] = (uint32_t)from->offset;
        res->bad_reasons[res->malformed] = reason;
    }
    res->malformed++;
}

const fw_sink_ops fwt_collect_sink = {
    .name = "collect",
    .alert = collect_alert,
    .dead_letter = collect_dead_letter,
};

fw_driver *fwt_driver(fw_ruleset *rs, const fw_pipeline_opts *o, fw_mem_source *src,
                      fwt_collector *c, char *err, size_t errlen)
{
    fw_driver_opts d = { .pipeline = *o, .source = &fw_mem_source_ops, .source_self = src,
                         .sink = &fwt_collect_sink, .sink_self = c, .rules = rs,
                         .snoozes = fwt_snoozes };
    return fw_driver_new(&d, err, errlen);
}

void fwt_drive(fw_driver *d, fwt_result *res)
{
    fw_driver_run(d, NULL);
    const fw_driver_stats *st = fw_driver_stats_get(d);
    res->faults += st->faults;
    res->evictions += st->evictions;
    for (size_t i = 0; i < fw_driver_rule_tally_count(d); i++) {
        const fw_rule_tally *t = fw_driver_rule_tally(d, i);
        fwt_tally *y = (fwt_tally *)fwt_tally_of(res, t->rule, t->mode);
        if (!y && res->ntallies < sizeof res->tallies / sizeof res->tallies[0]) {
            y = &res->tallies[res->ntallies++];
            snprintf(y->rule, sizeof y->rule, "%s", t->rule);
            snprintf(y->mode, sizeof y->mode, "%s", t->mode);
        }
        for (int k = 0; y && k < FW_RC_N; k++)
            y->n[k] += t->n[k];
    }
}

const fwt_tally *fwt_tally_of(const fwt_result *res, const char *rule_id, const char *mode)
{
    for (size_t i = 0; i < res->ntallies; i++)
        if (strcmp(res->tallies[i].rule, rule_id) == 0 &&
            (!mode || strcmp(res->tallies[i].mode, mode) == 0))
            return &res->tallies[i];
    return NULL;
}

/* Lines [from, to) of `events` (1-based line numbers) through a driver of
 * `threads` workers; the caller frees it (its pipeline holds the state). */
static fw_driver *feed(fw_ruleset *rs, uint32_t threads, const char *events, uint64_t from,
                       uint64_t to, fwt_result *res, char *err, size_t errlen)
{
    /* Small batches, so that even short inputs cross batch boundaries. */
    fw_pipeline_opts o = { .workers = threads, .batch_events = 3,
                           .max_event_bytes = 4096, .max_keys = fwt_max_keys };
    fw_mem_source *src = fw_mem_source_new();
    fw_mem_source_add_lines(src, events, from, to);
    fwt_collector c = { .res = res };
    fw_driver *d = fwt_driver(rs, &o, src, &c, err, errlen);
    if (d)
        fwt_drive(d, res);
    fw_mem_source_free(src);
    return d;
}

uint64_t fwt_max_keys;
fw_snoozes *fwt_snoozes;

int fwt_run_files(const fw_rulefile *files, size_t nfiles, const char *events,
                  uint32_t threads, fwt_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    fw_ruleset *rs;
    if (fw_ruleset_load_files(files, nfiles, 1, &rs, err, errlen) != 0)
        return -1;
    fw_driver *d = feed(rs, threads, events, 0, UINT64_MAX, res, err, errlen);
    int rc = d ? 0 : -1;
    fw_driver_free(d);
    fw_ruleset_unref(rs);
    return rc;
}

int fwt_run_checkpointed(const char *rules, const char *events, uint64_t split,
                         uint32_t threads1, uint32_t threads2, fwt_result *res,
                         char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    fw_rulefile f = { "test.json", rules, strlen(rules) };
    fw_ruleset *rs;
    if (fw_ruleset_load_files(&f, 1, 1, &rs, err, errlen) != 0)
        return -1;
    FILE *cp = tmpfile();
    int rc = -1;
    fw_driver *d = cp ? feed(rs, threads1, events, 0, split, res, err, errlen) : NULL;
    if (!d || fw_pipeline_save(fw_driver_pipeline(d), cp, err, errlen) != 0)
        goto out;
    fw_driver_free(d);
    /* The rest through a new pipeline of threads2 workers, from the file. */
    fw_pipeline_opts o = { .workers = threads2, .batch_events = 3,
                           .max_event_bytes = 4096, .max_keys = fwt_max_keys };
    fw_mem_source *src = fw_mem_source_new();
    fw_mem_source_add_lines(src, events, split, UINT64_MAX);
    fwt_collector c = { .res = res };
    d = fwt_driver(rs, &o, src, &c, err, errlen);
    rewind(cp);
    if (d && fw_pipeline_load(fw_driver_pipeline(d), cp, err, errlen) == 0) {
        fwt_drive(d, res);
        rc = 0;
    }
    fw_mem_source_free(src);
out:
    fw_driver_free(d);
    if (cp)
        fclose(cp);
    fw_ruleset_unref(rs);
    return rc;
}

int fwt_run(const char *rules, const char *lists, const char *events,
            uint32_t threads, fwt_result *res, char *err, size_t errlen)
{
    fw_rulefile files[16];
    char *bufs[16] = { 0 };
    char *names[16] = { 0 };
    size_t n = 0;
    files[n++] = (fw_rulefile){ "test.json", rules, strlen(rules) };
    if (lists) {
        char *copy = strdup(lists), *save = NULL;
        for (char *tok = strtok_r(copy, ";", &save); tok && n < 16;
             tok = strtok_r(NULL, ";", &save)) {
            char *eq = strchr(tok, '=');
            if (!eq)
                continue;
            *eq = '\0';
            names[n] = malloc(strlen(tok) + 6);
            sprintf(names[n], "%s.list", tok);
            bufs[n] = strdup(eq + 1);
            for (char *c = bufs[n]; *c; c++)
                if (*c == ',')
                    *c = '\n';
            files[n] = (fw_rulefile){ names[n], bufs[n], strlen(bufs[n]) };
            n++;
        }
        free(copy);
    }
    int rc = fwt_run_files(files, n, events, threads, res, err, errlen);
    for (size_t i = 0; i < 16; i++) {
        free(bufs[i]);
        free(names[i]);
    }
    return rc;
}

void fwt_result_free(fwt_result *res)
{
    for (size_t i = 0; i < res->nalerts; i++)
        cJSON_Delete(res->alerts[i]);
    free(res->alerts);
    free(res->to_shadow);
    memset(res, 0, sizeof *res);
}

static const cJSON *get(const cJSON *a, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *v = a;
    char *save = NULL;
    for (char *t = strtok_r(buf, ".", &save); t && v; t = strtok_r(NULL, ".", &save))
        v = cJSON_GetObjectItemCaseSensitive(v, t);
    return v;
}

const char *fwt_str(const cJSON *alert, const char *path)
{
    const cJSON *v = get(alert, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double fwt_num(const cJSON *alert, const char *path)
{
    const cJSON *v = get(alert, path);
    return cJSON_IsNumber(v) ? v->valuedouble : -1e300;
}

size_t fwt_count(const fwt_result *res, const char *rule_id,
                 const char *subject, const char *event_id)
{
    size_t n = 0;
    for (size_t i = 0; i < res->nalerts; i++) {
        const cJSON *a = res->alerts[i];
        const char *r = fwt_str(a, "rule_id"), *s = fwt_str(a, "subject"),
                   *e = fwt_str(a, "event_id");
        if (r && strcmp(r, rule_id) == 0 && (!subject || (s && !strcmp(s, subject))) &&
            (!event_id || (e && !strcmp(e, event_id))))
            n++;
    }
    return n;
}

const cJSON *fwt_find(const fwt_result *res, const char *rule_id,
                      const char *event_id)
{
    for (size_t i = 0; i < res->nalerts; i++) {
        const char *r = fwt_str(res->alerts[i], "rule_id"),
                   *e = fwt_str(res->alerts[i], "event_id");
        if (r && e && !strcmp(r, rule_id) && !strcmp(e, event_id))
            return res->alerts[i];
    }
    return NULL;
}

char *fwt_events(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

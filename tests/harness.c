/* harness.c — see harness.h.  Drives fw_pipeline exactly as replay.c does. */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/event.h"
#include "fraudwatch/pipeline.h"

static void collect(fwt_result *res, fw_batch *b)
{
    fw_alert_iter it;
    fw_alert_view a;
    fw_batch_alerts_begin(b, &it);
    while (fw_batch_alerts_next(b, &it, &a)) {
        res->alerts = realloc(res->alerts, (res->nalerts + 1) * sizeof *res->alerts);
        res->alerts[res->nalerts++] = cJSON_ParseWithLength(a.json, a.len);
    }
    for (uint32_t i = 0; i < fw_batch_malformed_count(b); i++) {
        uint32_t seq;
        const char *reason;
        fw_batch_malformed(b, i, &seq, &reason);
        if (res->malformed < 64) {
            res->bad_lines[res->malformed] = (uint32_t)fw_batch_tag(b, seq);
            res->bad_reasons[res->malformed] = reason;
        }
        res->malformed++;
    }
    res->faults += fw_batch_faults(b);
    res->evictions += fw_batch_evictions(b);
}

/* Feeds lines [from, to) of `events` (1-based line numbers) through p. */
static void feed(fw_pipeline *p, fw_ruleset *rs, const char *events,
                 uint64_t from, uint64_t to, fwt_result *res)
{
    fw_batch *cur = NULL;
    uint64_t lineno = 0;
    const char *s = events;
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        lineno++;
        if (len && lineno >= from && lineno < to) {
            for (;;) {
                while (!cur && !(cur = fw_pipeline_acquire(p, rs))) {
                    fw_batch *d = fw_pipeline_retire(p, true);
                    collect(res, d);
                    fw_pipeline_recycle(p, d);
                }
                if (fw_batch_add(cur, s, len, lineno))
                    break;
                fw_pipeline_submit(p, cur);
                cur = NULL;
            }
        }
        s += len + (nl ? 1 : 0);
    }
    if (cur)
        fw_pipeline_submit(p, cur);
    fw_batch *d;
    while ((d = fw_pipeline_retire(p, true))) {
        collect(res, d);
        fw_pipeline_recycle(p, d);
    }
}

uint64_t fwt_max_keys;

static fw_pipeline *pipeline(uint32_t threads, char *err, size_t errlen)
{
    /* Small batches, so that even short inputs cross batch boundaries. */
    fw_pipeline_opts o = { .workers = threads, .batch_events = 3,
                           .max_event_bytes = 4096, .max_keys = fwt_max_keys };
    return fw_pipeline_new(&o, err, errlen);
}

int fwt_run_files(const fw_rulefile *files, size_t nfiles, const char *events,
                  uint32_t threads, fwt_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    fw_ruleset *rs;
    if (fw_ruleset_load_files(files, nfiles, 1, &rs, err, errlen) != 0)
        return -1;
    fw_pipeline *p = pipeline(threads, err, errlen);
    if (!p) {
        fw_ruleset_unref(rs);
        return -1;
    }
    feed(p, rs, events, 0, UINT64_MAX, res);
    fw_pipeline_free(p);
    fw_ruleset_unref(rs);
    return 0;
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
    fw_pipeline *p = pipeline(threads1, err, errlen);
    int rc = -1;
    if (!cp || !p)
        goto out;
    feed(p, rs, events, 0, split, res);
    if (fw_pipeline_save(p, cp, err, errlen) != 0)
        goto out;
    fw_pipeline_free(p);
    p = pipeline(threads2, err, errlen);
    rewind(cp);
    if (!p || fw_pipeline_load(p, cp, err, errlen) != 0)
        goto out;
    feed(p, rs, events, split, UINT64_MAX, res);
    rc = 0;
out:
    fw_pipeline_free(p);
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

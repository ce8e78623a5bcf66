/* hostile_util.c — see hostile_util.h. */
#include "hostile_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <cmocka.h>

#include "fraudwatch/event.h"

static char first_bad_alert[512];

fwh_msg fwh_str(const char *s) { return (fwh_msg){ s, strlen(s) }; }

fw_ruleset *fwh_load(const char *rules, size_t rules_len, const char *list_name,
                     const char *list, size_t list_len, char *err, size_t errlen)
{
    char name[80];
    fw_rulefile f[2] = { { "hostile.json", rules, rules_len } };
    size_t n = 1;
    if (list_name) {
        snprintf(name, sizeof name, "%s.list", list_name);
        f[n++] = (fw_rulefile){ name, list, list_len };
    }
    fw_ruleset *rs = NULL;
    err[0] = '\0';
    if (fw_ruleset_load_files(f, n, 1, &rs, err, errlen) != 0)
        return NULL;
    return rs;
}

static cJSON *parse_alert(const char *json, size_t len)
{
    const char *end = NULL;
    cJSON *j = NULL;
    if (len >= 2 && json[len - 1] == '\n' && fw_utf8_valid(json, len))
        j = cJSON_ParseWithLengthOpts(json, len - 1, &end, 0);
    if (j && (end != json + len - 1 || !cJSON_IsObject(j))) {
        cJSON_Delete(j);
        j = NULL;
    }
    if (!j && !first_bad_alert[0])
        snprintf(first_bad_alert, sizeof first_bad_alert, "%.*s", (int)len, json);
    return j;
}

static void collect(fwt_result *res, fw_batch *b)
{
    fw_alert_iter it;
    fw_alert_view a;
    fw_batch_alerts_begin(b, &it);
    while (fw_batch_alerts_next(b, &it, &a)) {
        res->alerts = realloc(res->alerts, (res->nalerts + 1) * sizeof *res->alerts);
        assert_non_null(res->alerts);
        res->alerts[res->nalerts++] = parse_alert(a.json, a.len);
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
}

void fwh_run(fw_ruleset *rs, const fw_pipeline_opts *o, const fwh_msg *msgs,
             size_t n, fwt_result *res)
{
    memset(res, 0, sizeof *res);
    first_bad_alert[0] = '\0';
    fw_pipeline_opts dflt = { .workers = 2 };
    char err[256];
    fw_pipeline *p = fw_pipeline_new(o ? o : &dflt, err, sizeof err);
    if (!p)
        fail_msg("pipeline: %s", err);
    fw_batch *cur = NULL;
    for (size_t i = 0; i < n; i++) {
        for (;;) {
            while (!cur && !(cur = fw_pipeline_acquire(p, rs))) {
                fw_batch *d = fw_pipeline_retire(p, true);
                collect(res, d);
                fw_pipeline_recycle(p, d);
            }
            if (fw_batch_add(cur, msgs[i].p, msgs[i].n, i + 1))
                break;
            fw_pipeline_submit(p, cur);
            cur = NULL;
        }
    }
    if (cur)
        fw_pipeline_submit(p, cur);
    fw_batch *d;
    while ((d = fw_pipeline_retire(p, true))) {
        collect(res, d);
        fw_pipeline_recycle(p, d);
    }
    fw_pipeline_free(p);
}

void fwh_check_alerts(const fwt_result *res)
{
    for (size_t i = 0; i < res->nalerts; i++)
        if (!res->alerts[i])
            fail_msg("alert %zu is not one valid UTF-8 JSON object: %s", i,
                     first_bad_alert);
}

const char *fwh_reason(const fwt_result *res, uint32_t line)
{
    for (size_t i = 0; i < res->malformed && i < 64; i++)
        if (res->bad_lines[i] == line)
            return res->bad_reasons[i];
    return NULL;
}

char *fwh_repeat(const char *head, const char *unit, size_t times, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * times + tl + 1);
    assert_non_null(s);
    memcpy(s, head, hl);
    char *p = s + hl;
    for (size_t i = 0; i < times; i++, p += ul)
        memcpy(p, unit, ul);
    memcpy(p, tail, tl + 1);
    return s;
}

char *fwh_describe(const fw_ruleset *rs)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fw_ruleset_describe(rs, f);
    fclose(f);
    return text;
}

long fwh_peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

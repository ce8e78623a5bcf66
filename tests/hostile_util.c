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

/* The alerts' text of the last fwh_run, for a failure message. */
static char first_bad_alert[512];

void fwh_run(fw_ruleset *rs, const fw_pipeline_opts *o, const fwh_msg *msgs,
             size_t n, fwt_result *res)
{
    memset(res, 0, sizeof *res);
    fw_pipeline_opts dflt = { .workers = 2 };
    fw_mem_source *src = fw_mem_source_new();
    for (size_t i = 0; i < n; i++)
        fw_mem_source_add(src, msgs[i].p, msgs[i].n, (int64_t)i + 1);
    fwt_collector c = { .res = res, .strict = true };
    char err[256];
    fw_driver *d = fwt_driver(rs, o ? o : &dflt, src, &c, err, sizeof err);
    if (!d)
        fail_msg("pipeline: %s", err);
    fwt_drive(d, res);
    fw_driver_free(d);
    fw_mem_source_free(src);
    snprintf(first_bad_alert, sizeof first_bad_alert, "%s", c.first_bad);
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

/* timetext.c — times and durations as operators write them
 * (include/fraudwatch/timetext.h).
 *
 * Hand-written rather than strptime/timegm: strptime's %z does not take
 * "Z" on every libc, timegm depends on TZ handling we do not want on the
 * path of a rule file, and the accepted syntax must be exactly the
 * documented one (docs/rules.md) so that a file means the same everywhere.
 * Dates are converted with the days-from-civil algorithm (proleptic
 * Gregorian, H. Hinnant), which is exact for every year 0000..9999. */
#include "fraudwatch/timetext.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fraudwatch/event.h"

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* Exactly n digits at *p → *v; advances *p. */
static bool digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return true;
}

static int fail(char *err, size_t errlen, const char *s, const char *why)
{
    snprintf(err, errlen, "\"%.64s%s\" is not a time: %s", s, strlen(s) > 64 ? "..." : "",
             why);
    return -1;
}

#define TIME_FORMS "epoch milliseconds or ISO 8601 with an offset, " \
                   "e.g. 2026-12-31T23:59:59+08:00 or 2026-12-31T15:59:59Z"

int fw_time_parse(const char *s, int64_t *ms_out, char *err, size_t errlen)
{
    if (!s || !*s)
        return fail(err, errlen, s ? s : "", "empty (" TIME_FORMS ")");
    size_t len = strlen(s);
    if (strspn(s, "0123456789") == len) {
        if (len > 15)
            return fail(err, errlen, s, "beyond 9999-12-31 (epoch milliseconds)");
        int64_t v = 0;
        for (size_t i = 0; i < len; i++)
            v = v * 10 + (s[i] - '0');
        if (v > FW_TS_MAX)
            return fail(err, errlen, s, "beyond 9999-12-31 (epoch milliseconds)");
        *ms_out = v;
        return 0;
    }
    const char *p = s;
    int y, mo, d, h, mi, sec = 0, ms = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return fail(err, errlen, s, "expected " TIME_FORMS);
    if (*p != 'T' && *p != 't')
        return fail(err, errlen, s, "a date needs a time and an offset too, "
                                    "e.g. 2026-12-31T00:00+08:00");
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
        return fail(err, errlen, s, "expected HH:MM after the T");
    if (*p == ':') {
        p++;
        if (!digits(&p, 2, &sec))
            return fail(err, errlen, s, "expected two digits of seconds");
        if (*p == '.') {
            p++;
            int nd = 0;
            while (p[nd] >= '0' && p[nd] <= '9')
                nd++;
            if (nd < 1 || nd > 3)
                return fail(err, errlen, s, "a fraction of a second has 1 to 3 "
                                            "digits (milliseconds)");
            for (int i = 0; i < 3; i++)
                ms = ms * 10 + (i < nd ? p[i] - '0' : 0);
            p += nd;
        }
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return fail(err, errlen, s, "no such date");
    if (h > 23 || mi > 59 || sec > 59)
        return fail(err, errlen, s, "no such time of day");
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 ||
            om > 59)
            return fail(err, errlen, s, "the offset is +HH:MM or -HH:MM");
        off = sign * (oh * 60 + om);
    } else if (*p == '\0') {
        return fail(err, errlen, s, "no offset: add Z (UTC) or +HH:MM, e.g. +08:00 "
                                    "for Beijing time");
    } else {
        return fail(err, errlen, s, "unexpected text after the time");
    }
    if (*p != '\0')
        return fail(err, errlen, s, "unexpected text after the offset");
    int64_t t = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi - off) * 60 + sec;
    t = t * 1000 + ms;
    if (t < 0 || t > FW_TS_MAX)
        return fail(err, errlen, s, "before 1970 or after 9999 (UTC)");
    *ms_out = t;
    return 0;
}

int fw_duration_parse(const char *s, int64_t *ms_out, char *err, size_t errlen)
{
    const char *p = s ? s : "";
    int64_t v = 0;
    int nd = 0;
    while (*p >= '0' && *p <= '9' && nd < 12) {
        v = v * 10 + (*p++ - '0');
        nd++;
    }
    int64_t unit = 0;
    if (nd > 0 && p[0] && !p[1]) {
        switch (*p) {
        case 's': unit = 1000; break;
        case 'm': unit = 60 * 1000; break;
        case 'h': unit = 3600 * 1000; break;
        case 'd': unit = 86400 * 1000; break;
        default: break;
        }
    }
    if (!unit || v <= 0) {
        snprintf(err, errlen, "\"%.64s\" is not a duration: a positive whole number "
                              "and a unit s, m, h or d (30s, 15m, 24h, 7d)", s ? s : "");
        return -1;
    }
    if (v > FW_TS_MAX / unit) {
        snprintf(err, errlen, "\"%.64s\" is not a duration: longer than the calendar "
                              "allows", s);
        return -1;
    }
    *ms_out = v * unit;
    return 0;
}

void fw_time_format(int64_t ms, char *buf, size_t n)
{
    int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int frac = (int)(ms - sec * 1000);
    int64_t days = sec >= 0 ? sec / 86400 : (sec - 86399) / 86400;
    int64_t rem = sec - days * 86400;
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    int h = (int)(rem / 3600), mi = (int)(rem / 60 % 60), s = (int)(rem % 60);
    if (frac)
        snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, h, mi, s, frac);
    else
        snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, h, mi, s);
}

/* timetext.c — UNTIL times and durations as operators type them
 * (include/fraudwatch/timetext.h).
 *
 * Owns the one parser for an UNTIL (snooze files and commands, watchlist
 * entries): epoch milliseconds or ISO 8601 with an offset.  Written by
 * hand rather than with strptime(3)/timegm(3): strptime's %z is a glibc
 * extension that accepts offsets without checking them and silently
 * ignores what it cannot read, and timegm depends on the TZ database; the
 * civil-date arithmetic below (days from 1970-01-01 by Howard Hinnant's
 * algorithm) is exact for every year 0..9999 and checks every field. */
#include "fraudwatch/timetext.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* n digits at *p (advanced), as a number. */
static bool digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (*p >= end || **p < '0' || **p > '9')
            return false;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return true;
}

static int fail(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return -1;
}

int fw_time_parse(const char *s, size_t len, int64_t *ms, const char **why)
{
    const char *p = s, *end = s + len;
    if (len == 0)
        return fail(why, "is empty (epoch milliseconds, or ISO 8601 with an offset "
                         "such as 2026-12-06T09:30:00+08:00)");
    bool all_digits = true;
    for (size_t i = 0; i < len; i++)
        all_digits = all_digits && s[i] >= '0' && s[i] <= '9';
    if (all_digits) {
        if (len > 15)
            return fail(why, "is too large for epoch milliseconds");
        int64_t v = 0;
        for (size_t i = 0; i < len; i++)
            v = v * 10 + (s[i] - '0');
        *ms = v;
        return 0;
    }
    int y, mo, d, h, mi, sec = 0, frac = 0;
    const char *form = "is not a time: epoch milliseconds, or ISO 8601 with an offset "
                       "such as 2026-12-06T09:30:00+08:00 or 2026-12-06T01:30:00Z";
    if (!digits(&p, end, 4, &y) || p >= end || *p++ != '-' || !digits(&p, end, 2, &mo) ||
        p >= end || *p++ != '-' || !digits(&p, end, 2, &d))
        return fail(why, form);
    if (p >= end)
        return fail(why, "has a date but no time and offset (e.g. 2026-12-06T00:00:00+08:00)");
    if (*p != 'T' && *p != 't' && *p != ' ')
        return fail(why, form);
    p++;
    if (!digits(&p, end, 2, &h) || p >= end || *p++ != ':' || !digits(&p, end, 2, &mi))
        return fail(why, form);
    if (p < end && *p == ':') {
        p++;
        if (!digits(&p, end, 2, &sec))
            return fail(why, form);
        if (p < end && (*p == '.' || *p == ',')) {
            p++;
            int n = 0;
            while (p < end && *p >= '0' && *p <= '9') {
                if (n < 3)
                    frac = frac * 10 + (*p - '0');
                n++;
                p++;
            }
            if (n == 0)
                return fail(why, form);
            for (; n < 3; n++)
                frac *= 10;
        }
    }
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (mo < 1 || mo > 12)
        return fail(why, "has a month outside 01..12");
    if (d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)))
        return fail(why, "has a day that month does not have");
    if (h > 23 || mi > 59 || sec > 59)
        return fail(why, "has an hour, minute or second out of range");
    int64_t off_min = 0;
    if (p >= end)
        return fail(why, "has no offset: add Z (UTC) or +HH:MM, e.g. +08:00");
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!digits(&p, end, 2, &oh))
            return fail(why, "has an offset that is not +HH:MM");
        if (p < end && *p == ':')
            p++;
        if (!digits(&p, end, 2, &om) || oh > 23 || om > 59)
            return fail(why, "has an offset that is not +HH:MM");
        off_min = sign * (oh * 60 + om);
    } else {
        return fail(why, "has no offset: add Z (UTC) or +HH:MM, e.g. +08:00");
    }
    if (p != end)
        return fail(why, "has text after the offset");
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *ms = ((days * 86400 + h * 3600 + mi * 60 + sec) - off_min * 60) * 1000 + frac;
    return 0;
}

int fw_duration_parse(const char *s, int64_t *ms, const char **why)
{
    const char *form = "is not a duration such as 30m, 24h, 7d or 1h30m";
    const int64_t max = INT64_C(10) * 366 * 86400 * 1000;
    int64_t total = 0;
    const char *p = s;
    if (!*p)
        return fail(why, form);
    while (*p) {
        if (*p < '0' || *p > '9')
            return fail(why, form);
        int64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (*p++ - '0');
            if (n > max)
                return fail(why, "is longer than ten years");
        }
        int64_t unit;
        switch (*p++) {
        case 's': unit = 1000; break;
        case 'm': unit = 60 * 1000; break;
        case 'h': unit = 3600 * 1000; break;
        case 'd': unit = 86400 * 1000; break;
        case 'w': unit = 7 * 86400 * 1000; break;
        default: return fail(why, form);
        }
        if (n > max / unit || total + n * unit > max)
            return fail(why, "is longer than ten years");
        total += n * unit;
    }
    if (total <= 0)
        return fail(why, "must be longer than zero");
    *ms = total;
    return 0;
}

char *fw_time_format(int64_t ms, char *buf, size_t n)
{
    int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int frac = (int)(ms - sec * 1000);
    int64_t days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
    int64_t rem = sec - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (frac)
        snprintf(buf, n, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
                 (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), frac);
    else
        snprintf(buf, n, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d,
                 (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
    return buf;
}

/* fraudwatch — times and durations as operators type them: the UNTIL of a
 * snooze or a watchlist entry (SPEC §2), `--for 24h` (timetext.c).
 *
 * One parser for every place that reads an UNTIL, so a snooze file, a
 * .list line and the CLI agree on what a time is. */
#ifndef FRAUDWATCH_TIMETEXT_H
#define FRAUDWATCH_TIMETEXT_H

#include <stddef.h>
#include <stdint.h>

/* Longest text fw_time_format writes, with the NUL. */
#define FW_TIME_TEXT_MAX 40

/* An UNTIL: epoch milliseconds (digits only: "1700000000000"), or an ISO
 * 8601 time with an offset: "2026-12-06T09:30:00+08:00", "…Z", optional
 * seconds and fraction ("2026-12-06T09:30Z", "…:00.250+0800"), 'T' or one
 * space between date and time.  A time without an offset is refused (whose
 * local time would it be?).  0 and *ms, or -1 and *why (a static phrase
 * an operator can act on).  `len`: bytes of s to read (s need not be
 * NUL-terminated). */
int fw_time_parse(const char *s, size_t len, int64_t *ms, const char **why);

/* A duration: one or more NUMBER UNIT pairs, units s, m, h, d, w
 * ("24h", "7d", "1h30m"); > 0 and at most ten years.  0 and *ms, or -1
 * and *why. */
int fw_duration_parse(const char *s, int64_t *ms, const char **why);

/* ms as ISO 8601 UTC: "2026-12-06T01:30:00Z", with ".250" when the
 * milliseconds are not zero.  Returns buf. */
char *fw_time_format(int64_t ms, char *buf, size_t n);

#endif

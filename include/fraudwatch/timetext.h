/* fraudwatch — times and durations as operators write them.
 *
 * One parser for every place a person types a point in time (a watchlist
 * entry's UNTIL, `lists add --until`, a snooze's UNTIL) or a length of time
 * (`--ttl 7d`), so that a file, a command and Redis agree to the
 * millisecond.  A time is Unix epoch milliseconds (digits only) or ISO 8601
 * with an explicit offset: YYYY-MM-DDTHH:MM[:SS[.f{1,3}]](Z|+HH:MM|-HH:MM)
 * — a time without an offset is refused, because which zone it meant is a
 * guess (the centre's local time? the server's?).  Times are 0 ..
 * FW_TS_MAX (event.h), like event times.
 *
 * NOTE for the merge: the shadowsnooze branch writes the same two functions
 * with the same signatures for snooze UNTIL; keep one copy. */
#ifndef FRAUDWATCH_TIMETEXT_H
#define FRAUDWATCH_TIMETEXT_H

#include <stddef.h>
#include <stdint.h>

/* 0 and *ms_out, or -1 with a message quoting s (cut) in err. */
int fw_time_parse(const char *s, int64_t *ms_out, char *err, size_t errlen);

/* A positive duration: digits and one unit, s m h d ("30s", "15m", "24h",
 * "7d"); 0 and *ms_out, or -1 with a message in err. */
int fw_duration_parse(const char *s, int64_t *ms_out, char *err, size_t errlen);

/* ms as ISO 8601 UTC ("2026-12-06T07:38:39Z", ".123" before the Z when the
 * milliseconds are not 0) into buf (at least FW_TIMETEXT_MAX bytes). */
#define FW_TIMETEXT_MAX 32
void fw_time_format(int64_t ms, char *buf, size_t n);

#endif

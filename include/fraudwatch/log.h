/* fraudwatch — structured logging: one logfmt line per record, on stderr.
 *
 *   ts=2026-11-29T03:10:00.123Z level=info module=kafka msg="assigned partitions" count=4 topic=events
 *
 * `ts` is UTC with milliseconds; `level` is debug|info|warn|error; `module`
 * names the subsystem; `msg` is always quoted and escaped (\\ \" \n \r \t,
 * other control bytes as \u00XX).  The key=value pairs that follow are the
 * caller's printf-formatted `kvfmt`, written as given except that control
 * bytes in them are escaped the same way, so one record is always one line.
 * A value that may contain spaces or quotes should be quoted by the caller
 * (`error="%s"`) and passed through fw_log_quote() if it may hold a quote.
 *
 * Every function here is thread-safe and takes no lock of ours: the level is
 * an atomic, and each record is formatted on the caller's stack (or heap, if
 * it is long) and handed to the kernel in one write(), so records from
 * different threads never interleave.  fw_log() leaves errno as it found it.
 */
#ifndef FRAUDWATCH_LOG_H
#define FRAUDWATCH_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#if defined(__GNUC__) || defined(__clang__)
#define FW_LOG_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define FW_LOG_PRINTF(fmt, args)
#endif

enum fw_log_level { FW_LOG_DEBUG, FW_LOG_INFO, FW_LOG_WARN, FW_LOG_ERROR };

/* "debug", "info", "warn" (or "warning"), "error", in any case.  0 and *out
 * set, or -1 with *out untouched. */
int fw_log_parse_level(const char *s, enum fw_log_level *out);

/* The lowest level written; the default is FW_LOG_INFO.  May be called at
 * any time from any thread. */
void fw_log_set_level(enum fw_log_level l);

/* Would a record at level `l` be written?  One relaxed atomic load: test it
 * before computing expensive arguments. */
bool fw_log_enabled(enum fw_log_level l);

/* Writes one record.  `module` and `msg` may be NULL (written as "-" and
 * ""); `kvfmt` may be NULL or "" for no pairs.  Nothing is formatted when
 * the level is filtered out. */
void fw_log(enum fw_log_level l, const char *module, const char *msg, const char *kvfmt, ...)
    FW_LOG_PRINTF(4, 5);

/* A value made safe inside a quoted pair (`error="%s"`): backslashes and
 * double quotes escaped, cut to fit `len` bytes.  Returns buf. */
const char *fw_log_quote(const char *s, char *buf, size_t len);

/* Where records go; NULL restores the default, stderr (written with
 * write(2) on its descriptor).  Any other stream gets one fwrite() and an
 * fflush() per record.  The stream is borrowed: the caller keeps it open
 * until it sets another one.  Meant for tests. */
void fw_log_set_stream(FILE *f);

#endif

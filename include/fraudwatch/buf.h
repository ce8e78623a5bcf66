/* fraudwatch — growable byte buffer with JSON string escaping.
 *
 * Alerts and evidence are written as text straight into a buffer (no cJSON
 * tree on the output path).  Out-of-memory aborts: a stream processor that
 * cannot allocate a few bytes for an alert has nothing sensible left to do. */
#ifndef FRAUDWATCH_BUF_H
#define FRAUDWATCH_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct fw_buf {
    char *p;
    size_t len;
    size_t cap;
} fw_buf;

void fw_buf_reserve(fw_buf *b, size_t extra);
void fw_buf_put(fw_buf *b, const char *s, size_t n);
void fw_buf_puts(fw_buf *b, const char *s);
void fw_buf_putc(fw_buf *b, char c);
void fw_buf_printf(fw_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fw_buf_i64(fw_buf *b, int64_t v);
/* A JSON string literal, quotes included; control characters escaped.  At
 * most `max` bytes of s are written (cut at a UTF-8 character boundary). */
void fw_buf_json_str(fw_buf *b, const char *s, size_t n, size_t max);
void fw_buf_free(fw_buf *b);

#endif

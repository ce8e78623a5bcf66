/* buf.c — growable byte buffer (see include/fraudwatch/buf.h). */
#include "fraudwatch/buf.h"

#include "fraudwatch/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fw_buf_reserve(fw_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra + 1)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra + 1)
        cap *= 2;
    char *p = fw_xrealloc(b->p, cap);
    b->p = p;
    b->cap = cap;
}

void fw_buf_put(fw_buf *b, const char *s, size_t n)
{
    fw_buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void fw_buf_puts(fw_buf *b, const char *s) { fw_buf_put(b, s, strlen(s)); }

void fw_buf_putc(fw_buf *b, char c)
{
    fw_buf_reserve(b, 1);
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}

void fw_buf_printf(fw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    fw_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void fw_buf_i64(fw_buf *b, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    fw_buf_reserve(b, n + 1);
    if (v < 0)
        b->p[b->len++] = '-';
    while (n)
        b->p[b->len++] = tmp[--n];
    b->p[b->len] = '\0';
}

void fw_buf_json_str(fw_buf *b, const char *s, size_t n, size_t max)
{
    if (n > max) {
        n = max;
        /* Do not cut a UTF-8 sequence in half. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    fw_buf_reserve(b, n + 2);
    b->p[b->len++] = '"';
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        fw_buf_put(b, s + start, i - start);
        start = i + 1;
        switch (c) {
        case '"': fw_buf_put(b, "\\\"", 2); break;
        case '\\': fw_buf_put(b, "\\\\", 2); break;
        case '\n': fw_buf_put(b, "\\n", 2); break;
        case '\r': fw_buf_put(b, "\\r", 2); break;
        case '\t': fw_buf_put(b, "\\t", 2); break;
        default: fw_buf_printf(b, "\\u%04x", c); break;
        }
    }
    fw_buf_put(b, s + start, n - start);
    fw_buf_putc(b, '"');
}

void fw_buf_free(fw_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* fuzz_common.c — see fuzz.h. */
#include "fuzz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t fz_split(const char *data, size_t size, fz_part *parts, size_t max)
{
    size_t n = 0;
    const size_t seplen = sizeof FZ_SEP - 1;
    while (n + 1 < max) {
        const char *s = size >= seplen ? memmem(data, size, FZ_SEP, seplen) : NULL;
        if (!s)
            break;
        parts[n++] = (fz_part){ data, (size_t)(s - data) };
        size -= (size_t)(s - data) + seplen;
        data = s + seplen;
    }
    parts[n++] = (fz_part){ data, size };
    return n;
}

char *fz_dup(const char *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    if (!d)
        abort();
    if (n)
        memcpy(d, p, n);
    return d;
}

void fz_fail(const char *file, int line, const char *what, const char *fmt, ...)
{
    fprintf(stderr, "\n%s:%d: invariant failed: %s\n", file, line, what);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    fflush(stderr);
    abort();
}

bool fz_utf8_ref(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        unsigned long cp;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const unsigned long min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

/* text.c — the two text rules every part of fraudwatch shares: what is
 * valid UTF-8, and how a number is spelled.
 *
 * Owns them so that the engine (keys, distinct values, evidence), the
 * metrics exposition and the config printer agree to the byte, and so that
 * none of them has to reach into the event parser for them. */
#include "fraudwatch/text.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

bool fw_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        /* Fast path over ASCII, eight bytes at a time. */
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (w & 0x8080808080808080ULL)
                break;
            p += 8;
        }
        /* Fast path over three-byte characters (CJK text: the SMS rules'
         * subjects): a lead E1..EC or EE..EF and two continuation bytes is
         * always valid (E0 and ED have narrower second bytes, below).
         * Five at a time while 16 bytes are left (the 16th is not looked
         * at), then one at a time. */
#ifdef __SSE2__
        while (end - p >= 16) {
            const __m128i lead_or_cont = _mm_setr_epi8(
                (char)0xF0, (char)0xC0, (char)0xC0, (char)0xF0, (char)0xC0, (char)0xC0,
                (char)0xF0, (char)0xC0, (char)0xC0, (char)0xF0, (char)0xC0, (char)0xC0,
                (char)0xF0, (char)0xC0, (char)0xC0, 0);
            const __m128i want = _mm_setr_epi8(
                (char)0xE0, (char)0x80, (char)0x80, (char)0xE0, (char)0x80, (char)0x80,
                (char)0xE0, (char)0x80, (char)0x80, (char)0xE0, (char)0x80, (char)0x80,
                (char)0xE0, (char)0x80, (char)0x80, 0);
            /* A lead's low nibble, 0 elsewhere; compared with 0 and with D
             * at the leads only (FF elsewhere never equals 0). */
            const __m128i nibble = _mm_setr_epi8(0x0F, 0, 0, 0x0F, 0, 0, 0x0F, 0, 0, 0x0F, 0, 0,
                                                 0x0F, 0, 0, 0);
            const __m128i zero_at_leads = _mm_setr_epi8(
                0, -1, -1, 0, -1, -1, 0, -1, -1, 0, -1, -1, 0, -1, -1, -1);
            const __m128i d_at_leads = _mm_setr_epi8(
                0x0D, -1, -1, 0x0D, -1, -1, 0x0D, -1, -1, 0x0D, -1, -1, 0x0D, -1, -1, -1);
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            __m128i shape = _mm_cmpeq_epi8(_mm_and_si128(v, lead_or_cont), want);
            __m128i lo = _mm_and_si128(v, nibble);
            __m128i e0_ed = _mm_or_si128(_mm_cmpeq_epi8(lo, zero_at_leads),
                                         _mm_cmpeq_epi8(lo, d_at_leads));
            if (_mm_movemask_epi8(shape) != 0xFFFF || _mm_movemask_epi8(e0_ed) != 0)
                break;
            p += 15;
        }
#endif
        while (end - p >= 3) {
            uint32_t w = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
            unsigned lead = w & 0x0F;
            if ((w & 0x00C0C0F0) != 0x008080E0 || lead == 0x0 || lead == 0xD)
                break;
            p += 3;
        }
        if (p >= end)
            break;
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;      /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;      /* ≤ U+10FFFF */
        } else {
            return false;
        }
        if ((size_t)(end - p) <= n)
            return false;
        if (p[1] < lo || p[1] > hi)
            return false;
        for (size_t i = 2; i <= n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += n + 1;
    }
    return true;
}

/* Digits of an integer-valued double with |v| < 2^53. */
static size_t int_text(double v, char *buf)
{
    char tmp[24];
    size_t n = 0, len = 0;
    uint64_t u = (uint64_t)(v < 0 ? -v : v);
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

size_t fw_numtext(double v, char *buf)
{
    if (isnan(v))
        return (size_t)sprintf(buf, "NaN");
    if (isinf(v))
        return (size_t)sprintf(buf, v < 0 ? "-Infinity" : "Infinity");
    if (v == 0)
        return (size_t)sprintf(buf, "0");
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return int_text(v, buf);

    /* Shortest round-trip digits: 15 significant digits always identify a
     * normal double uniquely, so if they read back, stripping their
     * trailing zeros gives the shortest form; otherwise 16, then 17. */
    char e[40];
    /* Subnormals carry fewer digits, so there the search starts at one. */
    for (int prec = fabs(v) < DBL_MIN ? 0 : 14; prec <= 16; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e = [-]D.DDDDe[+-]XX */
    const char *p = e;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    char digits[24];
    int k = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[k++] = *p;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    int n = atoi(p + 1) + 1; /* decimal point position, as in ECMA-262 */

    size_t len = 0;
    if (neg)
        buf[len++] = '-';
    if (k <= n && n <= 21) {
        memcpy(buf + len, digits, (size_t)k);
        len += (size_t)k;
        for (int i = k; i < n; i++)
            buf[len++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(buf + len, digits, (size_t)n);
        len += (size_t)n;
        buf[len++] = '.';
        memcpy(buf + len, digits + n, (size_t)(k - n));
        len += (size_t)(k - n);
    } else if (-6 < n && n <= 0) {
        buf[len++] = '0';
        buf[len++] = '.';
        for (int i = 0; i < -n; i++)
            buf[len++] = '0';
        memcpy(buf + len, digits, (size_t)k);
        len += (size_t)k;
    } else {
        buf[len++] = digits[0];
        if (k > 1) {
            buf[len++] = '.';
            memcpy(buf + len, digits + 1, (size_t)(k - 1));
            len += (size_t)(k - 1);
        }
        len += (size_t)sprintf(buf + len, "e%c%d", n - 1 < 0 ? '-' : '+',
                               abs(n - 1));
    }
    buf[len] = '\0';
    return len;
}

int fw_parse_u64(const char *s, unsigned long long lo, unsigned long long hi,
                 unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* event_json.c — one message's JSON text → a cJSON tree, built fast.
 *
 * Owns the parse of an input event.  cJSON's own parser was about 40 % of a
 * worker's time on the 1.7M drain (perf, issue 16): it tries "null",
 * "false" and "true" with strncmp before every value, calls localeconv and
 * strtod for every number, and allocates each string after scanning it a
 * byte at a time.  This parser builds the very same tree — the same nodes,
 * types, strings, numbers bit for bit, order and duplicate keys — and
 * accepts and refuses exactly the inputs that cJSON 1.7.15's
 * cJSON_ParseWithLengthOpts() does, quirks included: any byte ≤ 32 is
 * whitespace, a leading UTF-8 BOM is skipped, a number is what strtod
 * reads of the run of bytes from [0-9+-eE.] that starts it, "\u0000" ends
 * a string's text early, nesting stops at CJSON_NESTING_LIMIT.  So everything downstream
 * reads events with cJSON's accessors, unchanged, and cJSON_Delete frees
 * them.  The shortcuts are for the common cases and give the same values:
 * an integer of at most 15 digits is exact as a double, and a decimal
 * fraction of at most 15 digits is the exact quotient of two exact doubles,
 * correctly rounded (what strtod returns), so neither goes through strtod;
 * every other number does, as in cJSON.  A string closed within 16 or 32
 * bytes, ASCII and without escapes, is copied with the vector loads that
 * found its end; a member's string or number is parsed in the object's
 * loop, without a call.
 *
 * tests/test_json.c and tests/fuzz/fuzz_event.c compare it with the
 * library, tree for tree, on hand-written edge cases, every short string
 * and decimal shape, the fuzz corpus and random mutations of it.
 *
 * The message's UTF-8 check rides along: a string's bytes are checked only
 * when one is outside ASCII, and everything between strings that a
 * successful parse read is ASCII by the grammar, so the caller need not
 * read the message a second time (fw_event_parse).
 *
 * Nodes and strings come from the arena when one is given (bumped off a
 * window of it, committed when the parse ends), else from malloc, one allocation per node and per string, as cJSON_Delete
 * expects. */
#include "event_json.h"

#include "fraudwatch/text.h"

#include <limits.h>
#include <locale.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef struct {
    const unsigned char *s;
    size_t len;
    size_t off;
    size_t depth;
    fw_arena *arena;
    unsigned char *wcur, *wend;  /* the arena's window being filled */
    bool utf8;          /* every string so far is valid UTF-8 */
} jp;

/* With an arena, pieces are bumped off a window of it (fw_arena_window),
 * 8-byte aligned as a cJSON node needs: no call per node or string. */
static void *jalloc_window(jp *j, size_t n)
{
    if (j->wcur)
        fw_arena_commit(j->arena, j->wcur);
    size_t len;
    unsigned char *w = fw_arena_window(j->arena, n, &len);
    if (!w) {
        j->wcur = j->wend = NULL;
        return NULL;
    }
    j->wcur = w + n;
    j->wend = w + len;
    return w;
}

static inline void *jalloc(jp *j, size_t n)
{
    if (!j->arena)
        return malloc(n);
    n = (n + 7) & ~(size_t)7;
    if ((size_t)(j->wend - j->wcur) < n)
        return jalloc_window(j, n);
    void *p = j->wcur;
    j->wcur += n;
    return p;
}

static void jfree(jp *j, void *p)
{
    if (!j->arena)
        free(p);
}

static inline cJSON *new_node(jp *j)
{
    cJSON *c = jalloc(j, sizeof *c);
    if (c)
        memset(c, 0, sizeof *c);
    return c;
}

/* cJSON's buffer_skip_whitespace(), to the letter: nothing at the end; at
 * the end after skipping, back one byte.  On a cursor held in a local (the
 * callers keep the message and its length in locals too: a store through
 * the parser's char pointers would make the compiler reload them from the
 * parser's state every time). */
static inline size_t ws_at(const unsigned char *s, size_t len, size_t off)
{
    /* No whitespace, the usual case (about nine calls an event): one test. */
    if (off < len && s[off] > 32)
        return off;
    if (off >= len)
        return off;
    while (off < len && s[off] <= 32)
        off++;
    if (off == len)
        off--;
    return off;
}

static inline void skip_ws(jp *j)
{
    j->off = ws_at(j->s, j->len, j->off);
}

static bool parse_value(jp *j, cJSON *item);

#ifndef __SSE2__
/* A word with a byte equal to c has the high bit of that byte set. */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)
static inline uint64_t has_byte(uint64_t w, unsigned char c)
{
    uint64_t x = w ^ (ONES * c);
    return (x - ONES) & ~x & HIGHS;
}
#endif

static unsigned hex4(const unsigned char *in)
{
    unsigned h = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = in[i];
        if (c >= '0' && c <= '9')
            h += c - '0';
        else if (c >= 'A' && c <= 'F')
            h += 10 + c - 'A';
        else if (c >= 'a' && c <= 'f')
            h += 10 + c - 'a';
        else
            return 0;       /* cJSON: an invalid digit makes the code 0 */
        if (i < 3)
            h <<= 4;
    }
    return h;
}

/* "\uXXXX" or a surrogate pair at `in` → UTF-8 at *out.  The length of the
 * escape read (6 or 12), 0 when cJSON refuses it. */
static unsigned utf16_escape(const unsigned char *in, const unsigned char *end,
                             unsigned char **out)
{
    if (end - in < 6)
        return 0;
    unsigned long cp;
    unsigned first = hex4(in + 2), seq = 6;
    if (first >= 0xDC00 && first <= 0xDFFF)
        return 0;
    if (first >= 0xD800 && first <= 0xDBFF) {
        const unsigned char *second = in + 6;
        if (end - second < 6 || second[0] != '\\' || second[1] != 'u')
            return 0;
        unsigned lo = hex4(second + 2);
        if (lo < 0xDC00 || lo > 0xDFFF)
            return 0;
        cp = 0x10000 + (((first & 0x3FF) << 10) | (lo & 0x3FF));
        seq = 12;
    } else {
        cp = first;
    }
    unsigned char *o = *out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        *out = o + 1;
    } else if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        *out = o + 2;
    } else if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        *out = o + 3;
    } else {
        o[0] = (unsigned char)(0xF0 | (cp >> 18));
        o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (unsigned char)(0x80 | (cp & 0x3F));
        *out = o + 4;
    }
    return seq;
}

/* A string literal at the current offset → a new NUL-terminated text in
 * *out.  cJSON's parse_string(): the closing quote is found first (an
 * escape skips the byte after it), then escapes are decoded. */
static __attribute__((noinline)) bool parse_string_any(jp *j, char **out)
{
    const unsigned char *s = j->s, *lim = j->s + j->len;
    if (j->off >= j->len || s[j->off] != '"')
        return false;
    const unsigned char *start = s + j->off + 1, *q = start;
    size_t escapes = 0;
    unsigned high = 0;                  /* a byte >= 0x80 seen */
    for (;;) {
        /* Sixteen (or eight) bytes at a time to the next quote or
         * backslash, noting any byte outside ASCII on the way. */
#ifdef __SSE2__
        const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
        while (lim - q >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
            unsigned hit = (unsigned)_mm_movemask_epi8(
                _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)));
            unsigned hi = (unsigned)_mm_movemask_epi8(v);
            if (hit) {
                high |= hi & ((hit & -hit) - 1);    /* the bytes before it */
                q += __builtin_ctz(hit);
                break;
            }
            high |= hi;
            q += 16;
        }
#else
        while (lim - q >= 8) {
            uint64_t w;
            memcpy(&w, q, 8);
            uint64_t hit = has_byte(w, '"') | has_byte(w, '\\');
            high |= (w & HIGHS) != 0;
            if (hit) {
                q += (unsigned)__builtin_ctzll(hit) >> 3;
                break;
            }
            q += 8;
        }
#endif
        while (q < lim && *q != '"' && *q != '\\')
            high |= *q++ & 0x80;
        if (q >= lim)
            return false;               /* the string ended unexpectedly */
        if (*q == '"')
            break;
        if (q + 1 >= lim)
            return false;               /* a backslash as the last byte */
        escapes++;
        high |= q[1] & 0x80;
        q += 2;
    }
    const unsigned char *end = q;       /* the closing quote */
    if (high && j->utf8 && !fw_utf8_valid((const char *)start, (size_t)(end - start)))
        j->utf8 = false;
    size_t cap = (size_t)(end - start) + 1 - escapes;
    unsigned char *text = jalloc(j, cap + 1);
    if (!text)
        return false;
    if (!escapes) {
        memcpy(text, start, (size_t)(end - start));
        text[end - start] = '\0';
    } else {
        unsigned char *o = text;
        const unsigned char *p = start;
        while (p < end) {
            if (*p != '\\') {
                *o++ = *p++;
                continue;
            }
            unsigned seq = 2;
            switch (p[1]) {
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case '"':
            case '\\':
            case '/': *o++ = p[1]; break;
            case 'u':
                seq = utf16_escape(p, end, &o);
                if (!seq)
                    goto fail;
                break;
            default:
                goto fail;
            }
            p += seq;
        }
        *o = '\0';
    }
    *out = (char *)text;
    j->off = (size_t)(end - s) + 1;
    return true;
fail:
    jfree(j, text);
    return false;
}

/* parse_string_any(), with the common case first and inline: a string whose
 * closing quote is within its first sixteen bytes (or 32: event ids,
 * account numbers), ASCII, no backslash — every member name of the events,
 * and most values that are not text.  The bytes loaded to find the quote
 * are the copy: a store per sixteen, no memcpy, and
 * none of the general function's register saving (callgrind, replay of
 * 300k events: 2.44G → 2.23G instructions in all; a member name cost 117). */
#ifdef __SSE2__
/* The bytes of v that are a quote or a backslash, as a bit mask. */
static inline unsigned quote_or_bslash(__m128i v)
{
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                    _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
}
#endif

static inline bool parse_string_at(jp *j, const unsigned char *s, size_t len, size_t *offp,
                                   char **out)
{
    size_t off = *offp;
#ifdef __SSE2__
    if (off < len && len - off > 16 && s[off] == '"') {
        const unsigned char *start = s + off + 1;
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)start);
        unsigned hit = quote_or_bslash(v);
        unsigned before = (hit & -hit) - 1;    /* the bytes before the first hit */
        unsigned high = (unsigned)_mm_movemask_epi8(v);
        if (hit && start[__builtin_ctz(hit)] == '"' && !(high & before)) {
            unsigned n = (unsigned)__builtin_ctz(hit);
            unsigned char *text = jalloc(j, 16);
            if (!text)
                return false;
            _mm_storeu_si128((__m128i *)(void *)text, v);
            text[n] = '\0';
            *out = (char *)text;
            *offp = off + n + 2;
            return true;
        }
        /* The same over 32 bytes: an event id, an account number. */
        if (!hit && !high && len - off > 32) {
            __m128i w = _mm_loadu_si128((const __m128i *)(const void *)(start + 16));
            unsigned hit2 = quote_or_bslash(w);
            unsigned before2 = (hit2 & -hit2) - 1;
            if (hit2 && start[16 + __builtin_ctz(hit2)] == '"' &&
                !((unsigned)_mm_movemask_epi8(w) & before2)) {
                unsigned n = 16 + (unsigned)__builtin_ctz(hit2);
                unsigned char *text = jalloc(j, 32);
                if (!text)
                    return false;
                _mm_storeu_si128((__m128i *)(void *)text, v);
                _mm_storeu_si128((__m128i *)(void *)(text + 16), w);
                text[n] = '\0';
                *out = (char *)text;
                *offp = off + n + 2;
                return true;
            }
        }
    }
#endif
    j->off = off;
    bool ok = parse_string_any(j, out);
    *offp = j->off;
    return ok;
}

static bool number_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' || c == 'E' ||
           c == '.';
}

static void set_number(cJSON *item, double n)
{
    item->valuedouble = n;
    if (n >= INT_MAX)
        item->valueint = INT_MAX;
    else if (n <= (double)INT_MIN)
        item->valueint = INT_MIN;
    else
        item->valueint = (int)n;
    item->type = cJSON_Number;
}

static bool parse_number(jp *j, cJSON *item)
{
    const unsigned char *s = j->s + j->off;
    size_t rem = j->len - j->off, i = 0;
    bool neg = false;
    if (rem && s[0] == '-') {
        neg = true;
        i = 1;
    }
    /* Up to 15 digits and then no other number byte: exact as a double,
     * and strtod would read exactly these bytes. */
    uint64_t v = 0;
    size_t d0 = i;
    while (i < rem && i - d0 < 16 && s[i] >= '0' && s[i] <= '9')
        v = v * 10 + (uint64_t)(s[i++] - '0');
    size_t nd = i - d0;
    if (nd >= 1 && nd <= 15 && (i == rem || !number_byte(s[i]))) {
        set_number(item, neg ? -(double)v : (double)v);
        j->off += i;
        return true;
    }
    /* A decimal fraction (an amount, 712.33), at most 15 digits in all and
     * then no other number byte: the digits are an exact double and so is
     * 10^k, and IEEE division rounds their quotient correctly, which is
     * the double strtod returns for the same text (Clinger's fast path). */
    if (nd >= 1 && nd <= 15 && i < rem && s[i] == '.') {
        size_t f0 = ++i;
        while (i < rem && nd + (i - f0) < 16 && s[i] >= '0' && s[i] <= '9')
            v = v * 10 + (uint64_t)(s[i++] - '0');
        size_t nf = i - f0;
        if (nf >= 1 && nd + nf <= 15 && (i == rem || !number_byte(s[i]))) {
            static const double pow10[16] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
                                              1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
            double q = (double)v / pow10[nf];
            set_number(item, neg ? -q : q);
            j->off += i;
            return true;
        }
    }
    /* Anything else exactly as cJSON's parse_number(): strtod over a copy
     * of every number byte from here, the point made the locale's. */
    size_t k = 0;
    while (k < rem && number_byte(s[k]))
        k++;
    char small[64], *buf = k < sizeof small ? small : malloc(k + 1);
    if (!buf)
        return false;
    char point = localeconv()->decimal_point[0];
    for (size_t m = 0; m < k; m++)
        buf[m] = s[m] == '.' ? point : (char)s[m];
    buf[k] = '\0';
    char *after;
    double n = strtod(buf, &after);
    size_t used = (size_t)(after - buf);
    if (buf != small)
        free(buf);
    if (!used)
        return false;
    set_number(item, n);
    j->off += used;
    return true;
}

/* The elements of an array or the members of an object, after its opening
 * bracket: cJSON's parse_array() and parse_object(), step for step. */
static bool parse_list(jp *j, cJSON *item, bool object)
{
    const unsigned char close = object ? '}' : ']';
    if (j->depth >= CJSON_NESTING_LIMIT)
        return false;
    j->depth++;
    const unsigned char *const s = j->s;
    const size_t len = j->len;
    size_t off = j->off;
    cJSON *head = NULL, *cur = NULL;
    off = ws_at(s, len, off + 1);
    if (off < len && s[off] == close)
        goto done;
    if (off >= len) {
        j->off = off - 1;
        return false;
    }
    off--;
    do {
        cJSON *n = new_node(j);
        if (!n)
            goto fail;
        if (!head) {
            head = cur = n;
        } else {
            cur->next = n;
            n->prev = cur;
            cur = n;
        }
        off = ws_at(s, len, off + 1);
        if (object) {
            if (!parse_string_at(j, s, len, &off, &cur->string))
                goto fail;
            off = ws_at(s, len, off);
            if (off >= len || s[off] != ':')
                goto fail;
            off = ws_at(s, len, off + 1);
        }
        /* A string or a number, the values of an event, without the call
         * through parse_value() (what it would do, here). */
        if (off < len && s[off] == '"') {
            if (!parse_string_at(j, s, len, &off, &cur->valuestring))
                goto fail;
            cur->type = cJSON_String;
        } else {
            j->off = off;
            if (off < len && (s[off] == '-' || (s[off] >= '0' && s[off] <= '9'))) {
                if (!parse_number(j, cur))
                    goto fail;
            } else if (!parse_value(j, cur)) {
                goto fail;
            }
            off = j->off;
        }
        off = ws_at(s, len, off);
    } while (off < len && s[off] == ',');
    if (off >= len || s[off] != close)
        goto fail;
done:
    j->depth--;
    if (head)
        head->prev = cur;
    item->type = object ? cJSON_Object : cJSON_Array;
    item->child = head;
    j->off = off + 1;
    return true;
fail:
    j->off = off;
    if (head && !j->arena)
        cJSON_Delete(head);
    return false;
}

/* null, false or true (cJSON sets valueint 1 for true). */
static bool literal(jp *j, cJSON *item, const char *word, int type)
{
    size_t n = strlen(word);
    if (j->len - j->off < n || memcmp(j->s + j->off, word, n) != 0)
        return false;
    item->type = type;
    item->valueint = type == cJSON_True;
    j->off += n;
    return true;
}

static bool parse_value(jp *j, cJSON *item)
{
    if (j->off >= j->len)
        return false;
    const unsigned char *s = j->s + j->off;
    switch (s[0]) {
    case 'n':
        return literal(j, item, "null", cJSON_NULL);
    case 'f':
        return literal(j, item, "false", cJSON_False);
    case 't':
        return literal(j, item, "true", cJSON_True);
    case '"': {
        size_t off = j->off;
        if (!parse_string_at(j, j->s, j->len, &off, &item->valuestring))
            return false;
        j->off = off;
        item->type = cJSON_String;
        return true;
    }
    case '[':
        return parse_list(j, item, false);
    case '{':
        return parse_list(j, item, true);
    default:
        if (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))
            return parse_number(j, item);
        return false;
    }
}

cJSON *fw_json_parse(const char *data, size_t len, fw_arena *arena, const char **end,
                     bool *utf8)
{
    if (utf8)
        *utf8 = false;
    if (!data || !len)
        return NULL;
    jp j = { .s = (const unsigned char *)data, .len = len, .arena = arena, .utf8 = true };
    cJSON *root = new_node(&j);
    if (!root)
        return NULL;
    if (len > 4 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        j.off = 3;
    skip_ws(&j);
    bool ok = parse_value(&j, root);
    if (j.wcur)
        fw_arena_commit(arena, j.wcur);
    if (!ok) {
        if (!arena)
            cJSON_Delete(root);
        return NULL;
    }
    if (end)
        *end = data + j.off;
    if (utf8)
        *utf8 = j.utf8;
    return root;
}

/* log.c — logfmt records on stderr, one write() each.
 *
 * Owns: the level threshold (an atomic int) and the output stream (an
 * atomic pointer, NULL meaning stderr).  Nothing else is shared.
 *
 * How a record flows: fw_log() loads the threshold and returns at once when
 * the record is filtered out — before it reads the clock or touches a
 * format string, so a debug line on a hot path costs one relaxed load.  A
 * record that passes is built in a buffer on the caller's stack (moved to
 * the heap only if it outgrows it): timestamp, level, module, the quoted
 * message, then the caller's key=value pairs formatted with vsnprintf and
 * copied with control bytes escaped.  The finished line goes out in one
 * write(2) on stderr's descriptor — the kernel appends it whole, so threads
 * (and processes sharing the pipe to the journal) never interleave and no
 * lock of ours is needed.  A stream set for tests gets fwrite + fflush under
 * that stream's own lock.
 *
 * Why logfmt: one record per line, greppable by eye, and parsed as-is by
 * Loki, Vector and `jq -R`-style tooling; the message is always quoted, so a
 * message may hold anything, including newlines. */
#include "fraudwatch/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int threshold = FW_LOG_INFO;
static _Atomic(FILE *) stream; /* NULL: stderr, by write(2) */

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int fw_log_parse_level(const char *s, enum fw_log_level *out)
{
    if (!s)
        return -1;
    for (int i = FW_LOG_DEBUG; i <= FW_LOG_ERROR; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum fw_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = FW_LOG_WARN;
        return 0;
    }
    return -1;
}

void fw_log_set_level(enum fw_log_level l)
{
    atomic_store_explicit(&threshold, (int)l, memory_order_relaxed);
}

bool fw_log_enabled(enum fw_log_level l)
{
    return (int)l >= atomic_load_explicit(&threshold, memory_order_relaxed);
}

void fw_log_set_stream(FILE *f)
{
    atomic_store_explicit(&stream, f == stderr ? NULL : f, memory_order_release);
}

/* ---- the line buffer ------------------------------------------------------ */

struct line {
    char *p;
    size_t len, cap;
    bool heap;
};

/* Room for `n` more bytes plus a newline; false if memory ran out (the line
 * is then cut short, never lost). */
static bool reserve(struct line *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap * 2;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = b->heap ? realloc(b->p, cap) : malloc(cap);
    if (!p)
        return false;
    if (!b->heap)
        memcpy(p, b->p, b->len);
    b->p = p;
    b->cap = cap;
    b->heap = true;
    return true;
}

static void put(struct line *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        n = b->cap - 1 - b->len;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(struct line *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Appends s[0..n) with \ and " escaped when `quotes`, and control bytes
 * always escaped. */
static void put_escaped(struct line *b, const char *s, size_t n, bool quotes)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* bytes of s not yet copied, ending at i */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t elen = 0;
        if (quotes && (c == '"' || c == '\\')) {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            elen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (elen) {
            put(b, s + i - run, run);
            put(b, esc, elen);
            run = 0;
        } else {
            run++;
        }
    }
    put(b, s + n - run, run);
}

/* A module name is written bare when it is a plain token, quoted otherwise. */
static bool bare(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
            return false;
    }
    return true;
}

static void put_timestamp(struct line *b)
{
    struct timespec ts;
    struct tm tm;
    char buf[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, sizeof buf, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
    put(b, buf, n > 0 ? (size_t)n : 0);
}

FW_LOG_PRINTF(2, 0)
static void put_pairs(struct line *b, const char *kvfmt, va_list ap)
{
    char small[512];
    char *kv = small;
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, kvfmt, ap);
    if (n >= (int)sizeof small) {
        kv = malloc((size_t)n + 1);
        if (kv)
            vsnprintf(kv, (size_t)n + 1, kvfmt, again);
        else {
            kv = small;
            n = (int)sizeof small - 1;
        }
    }
    va_end(again);
    if (n > 0) {
        put(b, " ", 1);
        put_escaped(b, kv, (size_t)n, false);
    }
    if (kv != small)
        free(kv);
}

static void emit(const char *p, size_t n)
{
    FILE *f = atomic_load_explicit(&stream, memory_order_acquire);
    if (f) {
        flockfile(f);
        fwrite(p, 1, n, f);
        fflush(f);
        funlockfile(f);
        return;
    }
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to complain */
        }
        p += w;
        n -= (size_t)w;
    }
}

void fw_log(enum fw_log_level l, const char *module, const char *msg, const char *kvfmt, ...)
{
    if (!fw_log_enabled(l))
        return;
    int saved_errno = errno;
    int lv = (int)l < FW_LOG_DEBUG ? FW_LOG_DEBUG : (int)l > FW_LOG_ERROR ? FW_LOG_ERROR : (int)l;

    char stack[1024];
    struct line b = { .p = stack, .cap = sizeof stack };
    put_timestamp(&b);
    puts_(&b, " level=");
    puts_(&b, level_names[lv]);
    puts_(&b, " module=");
    if (!module)
        module = "-";
    if (bare(module)) {
        puts_(&b, module);
    } else {
        put(&b, "\"", 1);
        put_escaped(&b, module, strlen(module), true);
        put(&b, "\"", 1);
    }
    puts_(&b, " msg=\"");
    if (msg)
        put_escaped(&b, msg, strlen(msg), true);
    put(&b, "\"", 1);
    if (kvfmt && *kvfmt) {
        va_list ap;
        va_start(ap, kvfmt);
        put_pairs(&b, kvfmt, ap);
        va_end(ap);
    }
    b.p[b.len++] = '\n'; /* reserve() always keeps room for it */
    emit(b.p, b.len);
    if (b.heap)
        free(b.p);
    errno = saved_errno;
}

const char *fw_log_quote(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    if (!len)
        return "";
    for (; s && *s && o + 1 < len; s++) {
        if (*s == '"' || *s == '\\') {
            if (o + 2 >= len)
                break;
            buf[o++] = '\\';
        }
        buf[o++] = *s;
    }
    buf[o] = '\0';
    return buf;
}

/* metrics.c — the Prometheus registry, its series, and the HTTP endpoint.
 *
 * Owns: every family (one metric name: type, help, histogram bounds) and
 * every series (one label set of a family) ever registered, until
 * fw_metrics_free(); and, in fw_http, the libmicrohttpd daemon and its
 * thread.
 *
 * Two paths with different rules:
 *
 *   the event path — fw_counter_add, fw_gauge_set/add, fw_histogram_observe —
 *   touches only the series object: one relaxed atomic read-modify-write
 *   (a compare-and-swap loop for the doubles).  No lock, no lookup, no
 *   allocation.  Each counter and gauge sits alone on a 64-byte line, so
 *   the per-worker series that different threads bump do not share cache
 *   lines.  Relaxed ordering is enough: every series is independent, and a
 *   scrape only needs each value to be one that really existed.
 *
 *   the registry path — registration and rendering — takes the registry
 *   mutex.  Families are kept in an array sorted by name, and each family's
 *   series in an array sorted by their label string, so a lookup is a
 *   binary search and a render is a plain walk that comes out in the order
 *   the exposition format asks for.  Registration is rare (start-up, a new
 *   partition, a new malformed reason) and series are never removed, so the
 *   pointers handed out stay valid and the event path never needs the lock.
 *   A render (on the HTTP thread, every scrape) holds the mutex while it
 *   writes the text into one fw_buf, so a registration waits at most that
 *   long; numbers are spelled by fw_numtext, the project's one formatter.
 *
 * Histogram sums: a double stored as its IEEE-754 bits in an atomic uint64
 * and updated by compare-and-swap.  The alternative, an atomic int64 of
 * micro-units, is wait-free but fixes a unit and a range for every
 * histogram (seconds? bytes?); a CAS loop that rarely retries costs less
 * than that surprise.  A histogram's _count is derived from its buckets
 * (the +Inf bucket), so a scrape always sees _count equal to le="+Inf".
 *
 * Registration validates names and label strings, because one malformed
 * line makes Prometheus reject the whole scrape: a bad metric costs that
 * metric (NULL, and every series operation accepts NULL), not the rest.
 *
 * The HTTP server is libmicrohttpd, bound with MHD_OPTION_SOCK_ADDR to
 * exactly the loopback address given — without options the endpoint has no
 * authentication, so nothing else is accepted.  fw_http_start_opts() adds
 * HTTPS (GnuTLS, the PEM files read into memory at start) and HTTP basic
 * authentication (the password from a file, compared in constant time,
 * on every path); with both, any address is accepted (issue 13).  Its messages go to fw_log, at most
 * FW_HTTP_LOG_BURST a minute (and, while starting, into the caller's error
 * buffer).
 *
 * Slow clients (issue 10, item 7).  libmicrohttpd's timeout is one of
 * inactivity, restarted by every byte, so connections that trickle a header
 * byte now and then held every slot for as long as they liked, and a
 * liveness probe waited behind them until it gave up.  A probe and an
 * attacker on this host are both 127.0.0.1, so refusing the n-th connection
 * of an address (MHD_OPTION_PER_IP_CONNECTION_LIMIT) would refuse the probe
 * too.  Instead:
 *
 *   - a deadline for the whole request: FW_HTTP_REQUEST_DEADLINE_MS from the
 *     connection's opening (or from the previous answer on a kept-alive
 *     connection) to the end of the answer, whatever trickles meanwhile;
 *   - room for the newcomer: a connection beyond FW_HTTP_MAX_CONNS_PER_ADDR
 *     from one address, or beyond FW_HTTP_MAX_CONNS in all, is let in and
 *     the one waiting longest for its request to finish (of that address,
 *     or of all) is closed.  An honest request takes milliseconds, so it is
 *     the slow ones that go, and a fresh /healthz gets in and is answered
 *     however many slow connections there are.  (Only a flood of new
 *     connections — thousands a second — can push one out before it is
 *     read.)  The limit per address keeps a client from pushing out the
 *     connections of the others (a sidecar bound to 127.0.0.2, say).
 *
 * Both close a connection the same way: shutdown(2) of its socket, after
 * which libmicrohttpd reads end-of-stream and closes it itself (and calls
 * the connection callback, which frees its slot).  For that to be safe the
 * socket must still be libmicrohttpd's, not a descriptor since reused by
 * another part of the daemon — so there is no libmicrohttpd thread: one
 * thread of our own runs its event loop (MHD_run_wait, FW_HTTP_TICK_MS at a
 * time) and sweeps for deadlines between turns, and every libmicrohttpd
 * callback runs on that thread too.  The connection table needs no lock,
 * and a socket is only ever shut down by the thread that would close it,
 * before it has done so.  Dropped connections are counted in
 * fraudwatch_http_connections_dropped_total{reason="deadline"|"evicted"}. */
#include "fraudwatch/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/buf.h"
#include "fraudwatch/text.h"
#include "fraudwatch/log.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "series need lock-free 64-bit atomics");
_Static_assert(sizeof(double) == sizeof(uint64_t), "doubles are stored as 64-bit words");

#define CACHE_LINE 64
#define MAX_LABELS 16

/* The HTTP endpoint's bounds (docs/observability.md, "Slow clients").
 *
 * A request must arrive whole and be answered within this of its
 * connection's opening or of the previous answer on the connection; an
 * idle kept-alive connection is closed after it too.  Prometheus's default
 * scrape timeout is 10 s; on loopback a scrape takes milliseconds. */
#define FW_HTTP_REQUEST_DEADLINE_MS 5000
/* Connections held at once, from one address and in all; one more lets the
 * oldest unfinished one (of that address, or of all) go — among those that
 * have had a turn of the event loop to be read (see oldest()). */
#define FW_HTTP_MAX_CONNS_PER_ADDR 16u
#define FW_HTTP_MAX_CONNS 48u
/* libmicrohttpd's own limit (at it, it stops accepting until one closes):
 * headroom above FW_HTTP_MAX_CONNS for dropped connections libmicrohttpd
 * has not closed yet — they go within a turn or two. */
#define FW_HTTP_HARD_LIMIT 64u
/* libmicrohttpd's inactivity timeout, longer than the deadline so the sweep
 * always comes first: a backstop for a dropped connection that somehow
 * stays open. */
#define FW_HTTP_IDLE_TIMEOUT_S 10u
/* Memory per connection for the request and the answer's headers; a
 * request with more headers than fit is refused with an error status.
 * libmicrohttpd's default, written down. */
#define FW_HTTP_CONN_MEMORY (32u * 1024)
/* The longest turn of the event loop: the deadline's granularity, and how
 * long fw_http_stop() may wait for the thread. */
#define FW_HTTP_TICK_MS 200
/* libmicrohttpd's messages logged per minute; the rest are counted and
 * reported as one line (a flood of slow clients means a message each). */
#define FW_HTTP_LOG_BURST 20u
#define FW_HTTP_LOG_WINDOW_MS 60000

enum kind { COUNTER, GAUGE, HISTOGRAM };
static const char *const kind_names[] = { "counter", "gauge", "histogram" };

struct fw_counter {
    _Alignas(CACHE_LINE) _Atomic uint64_t v;
};

struct fw_gauge {
    _Alignas(CACHE_LINE) _Atomic uint64_t bits; /* a double */
};

struct fw_histogram {
    _Alignas(CACHE_LINE) _Atomic uint64_t sum_bits; /* a double */
    const double *bounds; /* the family's */
    size_t nbounds;
    _Atomic uint64_t counts[]; /* nbounds + 1, not cumulative; last is +Inf */
};

struct series {
    char *labels;
    void *obj;
};

struct family {
    char *name;
    char *help; /* NULL until a non-empty help is given */
    enum kind kind;
    double *bounds; /* histograms */
    size_t nbounds;
    struct series *series; /* sorted by labels */
    size_t n, cap;
};

struct fw_metrics {
    pthread_mutex_t mu;
    struct family **fams; /* sorted by name */
    size_t n, cap;
};

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* ---- the event path ------------------------------------------------------ */

void fw_counter_add(fw_counter *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

uint64_t fw_counter_get(const fw_counter *c)
{
    return c ? atomic_load_explicit(&((fw_counter *)c)->v, memory_order_relaxed) : 0;
}

void fw_gauge_set(fw_gauge *g, double v)
{
    if (g)
        atomic_store_explicit(&g->bits, dbits(v), memory_order_relaxed);
}

static void add_double(_Atomic uint64_t *bits, double v)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, dbits(bitsd(old) + v),
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

void fw_gauge_add(fw_gauge *g, double v)
{
    if (g)
        add_double(&g->bits, v);
}

double fw_gauge_get(const fw_gauge *g)
{
    return g ? bitsd(atomic_load_explicit(&((fw_gauge *)g)->bits, memory_order_relaxed)) : 0.0;
}

void fw_histogram_observe(fw_histogram *h, double v)
{
    if (!h)
        return;
    size_t lo = 0, hi = h->nbounds; /* first bound >= v; NaN falls through to +Inf */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    add_double(&h->sum_bits, v);
}

/* ---- validation ----------------------------------------------------------- */

static bool name_start(char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool name_char(char c, bool colon)
{
    return name_start(c, colon) || (c >= '0' && c <= '9');
}

static bool valid_name(const char *s)
{
    if (!s || !name_start(*s, true))
        return false;
    while (*++s)
        if (!name_char(*s, true))
            return false;
    return true;
}

/* name="value"(,name="value")*, values escaped, label names unique and not
 * reserved (__*), and no "le" on a histogram. */
static bool valid_labels(const char *s, bool histogram)
{
    const char *names[MAX_LABELS];
    size_t lens[MAX_LABELS], k = 0;

    if (!*s)
        return true;
    if (!fw_utf8_valid(s, strlen(s)))
        return false;
    for (;;) {
        const char *n = s;
        if (!name_start(*s, false))
            return false;
        while (name_char(*s, false))
            s++;
        size_t len = (size_t)(s - n);
        if ((len >= 2 && n[0] == '_' && n[1] == '_') ||
            (histogram && len == 2 && memcmp(n, "le", 2) == 0) || k == MAX_LABELS)
            return false;
        for (size_t i = 0; i < k; i++)
            if (lens[i] == len && memcmp(names[i], n, len) == 0)
                return false;
        names[k] = n;
        lens[k++] = len;
        if (*s++ != '=' || *s++ != '"')
            return false;
        while (*s != '"') {
            if (*s == '\0' || *s == '\n')
                return false;
            if (*s == '\\') {
                if (s[1] != '\\' && s[1] != '"' && s[1] != 'n')
                    return false;
                s++;
            }
            s++;
        }
        s++;
        if (*s == '\0')
            return true;
        if (*s++ != ',')
            return false;
    }
}

static bool valid_bounds(const double *b, size_t n)
{
    if (n && !b)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(b[i]) || (i && !(b[i] > b[i - 1])))
            return false;
    return true;
}

/* ---- the registry ---------------------------------------------------------- */

fw_metrics *fw_metrics_new(void)
{
    fw_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void family_free(struct family *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->series[i].labels);
        free(f->series[i].obj);
    }
    free(f->series);
    free(f->name);
    free(f->help);
    free(f->bounds);
    free(f);
}

void fw_metrics_free(fw_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        family_free(m->fams[i]);
    free(m->fams);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Index of `name`, or where it would go; *found says which. */
static size_t find_family(const fw_metrics *m, const char *name, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->fams[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static size_t find_series(const struct family *f, const char *labels, bool *found)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->series[mid].labels, labels);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Makes room for one more element in a growable array. */
static bool grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

static void *new_object(const struct family *f)
{
    size_t size = f->kind == HISTOGRAM
                      ? sizeof(fw_histogram) + (f->nbounds + 1) * sizeof(_Atomic uint64_t)
                      : f->kind == GAUGE ? sizeof(fw_gauge) : sizeof(fw_counter);
    size = (size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    void *p = aligned_alloc(CACHE_LINE, size);
    if (!p)
        return NULL;
    memset(p, 0, size); /* all-zero bits: 0, 0.0 and empty buckets */
    if (f->kind == HISTOGRAM) {
        fw_histogram *h = p;
        h->bounds = f->bounds;
        h->nbounds = f->nbounds;
    }
    return p;
}

static bool same_bounds(const struct family *f, const double *b, size_t n)
{
    if (f->nbounds != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (f->bounds[i] != b[i])
            return false;
    return true;
}

static struct family *new_family(const char *name, const char *help, enum kind kind,
                                 const double *bounds, size_t nbounds)
{
    struct family *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->kind = kind;
    f->name = strdup(name);
    if (help && *help)
        f->help = strdup(help);
    if (nbounds) {
        f->bounds = malloc(nbounds * sizeof *f->bounds);
        if (f->bounds)
            memcpy(f->bounds, bounds, nbounds * sizeof *f->bounds);
    }
    f->nbounds = nbounds;
    if (!f->name || (help && *help && !f->help) || (nbounds && !f->bounds)) {
        family_free(f);
        return NULL;
    }
    return f;
}

static void *get_or_create(fw_metrics *m, enum kind kind, const char *name, const char *help,
                           const char *labels, const double *bounds, size_t nbounds)
{
    if (!labels)
        labels = "";
    if (!m || !valid_name(name) || !valid_labels(labels, kind == HISTOGRAM) ||
        (kind == HISTOGRAM && !valid_bounds(bounds, nbounds)))
        return NULL;

    void *obj = NULL;
    struct family *fresh = NULL;
    char *lab = NULL;
    pthread_mutex_lock(&m->mu);

    bool found;
    size_t fi = find_family(m, name, &found);
    struct family *f = found ? m->fams[fi] : NULL;
    if (f) {
        if (f->kind != kind || (kind == HISTOGRAM && !same_bounds(f, bounds, nbounds)))
            goto out;
        if (!f->help && help && *help)
            f->help = strdup(help); /* on failure: no HELP line, no harm */
    } else {
        f = fresh = new_family(name, help, kind, bounds, nbounds);
        if (!f || !grow((void **)&m->fams, &m->cap, m->n, sizeof *m->fams))
            goto out;
    }

    size_t si = find_series(f, labels, &found);
    if (found) {
        obj = f->series[si].obj;
        goto out;
    }
    if (!grow((void **)&f->series, &f->cap, f->n, sizeof *f->series) ||
        !(lab = strdup(labels)) || !(obj = new_object(f)))
        goto out;
    memmove(&f->series[si + 1], &f->series[si], (f->n - si) * sizeof *f->series);
    f->series[si] = (struct series){ lab, obj };
    f->n++;
    lab = NULL;
    if (fresh) {
        memmove(&m->fams[fi + 1], &m->fams[fi], (m->n - fi) * sizeof *m->fams);
        m->fams[fi] = fresh;
        m->n++;
        fresh = NULL;
    }
out:
    pthread_mutex_unlock(&m->mu);
    free(lab);
    family_free(fresh); /* only if it was never inserted */
    return obj;
}

fw_counter *fw_metrics_counter(fw_metrics *m, const char *name, const char *help,
                               const char *labels)
{
    return get_or_create(m, COUNTER, name, help, labels, NULL, 0);
}

fw_gauge *fw_metrics_gauge(fw_metrics *m, const char *name, const char *help,
                           const char *labels)
{
    return get_or_create(m, GAUGE, name, help, labels, NULL, 0);
}

fw_histogram *fw_metrics_histogram(fw_metrics *m, const char *name, const char *help,
                                   const char *labels, const double *bounds, size_t nbounds)
{
    return get_or_create(m, HISTOGRAM, name, help, labels, bounds, nbounds);
}

/* ---- rendering ---------------------------------------------------------------- */

/* A value as the exposition format spells it: the shortest digits that read
 * back as the same double (the project's one number formatter), and +Inf,
 * -Inf, NaN. */
static void put_double(fw_buf *b, double v)
{
    char num[FW_NUMTEXT_MAX];
    if (isnan(v))
        fw_buf_puts(b, "NaN");
    else if (isinf(v))
        fw_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else
        fw_buf_put(b, num, fw_numtext(v, num));
}

static void put_u64(fw_buf *b, uint64_t v)
{
    fw_buf_printf(b, "%llu", (unsigned long long)v);
}

/* name<suffix>{labels,le="bound"} -- then the caller writes " value\n". */
static void put_series(fw_buf *b, const struct family *f, const char *suffix,
                       const char *labels, const double *le)
{
    fw_buf_puts(b, f->name);
    fw_buf_puts(b, suffix);
    if (*labels || le) {
        fw_buf_putc(b, '{');
        fw_buf_puts(b, labels);
        if (le) {
            fw_buf_puts(b, *labels ? ",le=\"" : "le=\"");
            put_double(b, *le);
            fw_buf_putc(b, '"');
        }
        fw_buf_putc(b, '}');
    }
    fw_buf_putc(b, ' ');
}

static void render_family(fw_buf *b, const struct family *f)
{
    static const double inf = INFINITY;
    if (f->help) {
        fw_buf_printf(b, "# HELP %s ", f->name);
        for (const char *p = f->help; *p; p++) {
            if (*p == '\\')
                fw_buf_puts(b, "\\\\");
            else if (*p == '\n')
                fw_buf_puts(b, "\\n");
            else
                fw_buf_putc(b, *p);
        }
        fw_buf_putc(b, '\n');
    }
    fw_buf_printf(b, "# TYPE %s %s\n", f->name, kind_names[f->kind]);

    for (size_t i = 0; i < f->n; i++) {
        const struct series *s = &f->series[i];
        if (f->kind == COUNTER) {
            put_series(b, f, "", s->labels, NULL);
            put_u64(b, fw_counter_get(s->obj));
        } else if (f->kind == GAUGE) {
            put_series(b, f, "", s->labels, NULL);
            put_double(b, fw_gauge_get(s->obj));
        } else {
            fw_histogram *h = s->obj;
            uint64_t cum = 0;
            for (size_t k = 0; k <= h->nbounds; k++) {
                cum += atomic_load_explicit(&h->counts[k], memory_order_relaxed);
                put_series(b, f, "_bucket", s->labels, k < h->nbounds ? &h->bounds[k] : &inf);
                put_u64(b, cum);
                fw_buf_putc(b, '\n');
            }
            put_series(b, f, "_sum", s->labels, NULL);
            put_double(b, bitsd(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
            fw_buf_putc(b, '\n');
            put_series(b, f, "_count", s->labels, NULL);
            put_u64(b, cum);
        }
        fw_buf_putc(b, '\n');
    }
}

char *fw_metrics_render(fw_metrics *m, size_t *len)
{
    fw_buf b = { 0 };
    if (len)
        *len = 0;
    if (!m)
        return NULL;
    fw_buf_reserve(&b, 4096);
    b.p[0] = '\0'; /* an empty registry renders as "" */
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++)
        render_family(&b, m->fams[i]);
    pthread_mutex_unlock(&m->mu);
    if (len)
        *len = b.len;
    return b.p;
}

size_t fw_metrics_escape_label(const char *value, char *buf, size_t buflen)
{
    const unsigned char *s = (const unsigned char *)(value ? value : "");
    size_t need = 0, out = 0;
    bool cut = buflen == 0;
    while (*s) {
        const char *piece = (const char *)s;
        size_t plen = 1, adv = 1;
        if (*s == '\\')
            piece = "\\\\", plen = 2;
        else if (*s == '"')
            piece = "\\\"", plen = 2;
        else if (*s == '\n')
            piece = "\\n", plen = 2;
        else if (*s >= 0x80) {
            /* The sequence length its lead byte announces, if it is valid
             * (fw_utf8_valid stops at the first bad byte, so never reads past
             * the NUL). */
            size_t k = *s >= 0xf0 ? 4 : *s >= 0xe0 ? 3 : 2;
            if (fw_utf8_valid((const char *)s, k))
                adv = plen = k;
            else
                piece = "\xef\xbf\xbd", plen = 3; /* U+FFFD for this byte */
        }
        if (!cut && out + plen < buflen) {
            memcpy(buf + out, piece, plen);
            out += plen;
        } else {
            cut = true;
        }
        need += plen;
        s += adv;
    }
    if (buflen)
        buf[out] = '\0';
    return need;
}

/* ---- HTTP ----------------------------------------------------------------------- */

#if defined(__has_include)
#if __has_include(<microhttpd.h>)
#define FW_HAVE_MICROHTTPD 1
#endif
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

#include "listen_addr.h"

/* The address, or "metrics listen address ..." and why not.  Off the
 * loopback only when `any` (TLS and a password: fw_http_start_opts()). */
static int parse_listen(const char *listen, bool any, struct sockaddr_storage *ss, char *err,
                        size_t errlen)
{
    char why[512];
    if ((any ? fw_listen_parse_any : fw_listen_parse)(listen, ss, why, sizeof why) == 0)
        return 0;
    snprintf(err, errlen, "metrics listen address %s", why);
    return -1;
}

#ifdef FW_HAVE_MICROHTTPD
#include <microhttpd.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "fraudwatch/clock.h"
#include "fraudwatch/secret.h"

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_result;
#else
typedef int mhd_result;
#endif

#if MHD_VERSION < 0x00097206
#error "the metrics endpoint needs libmicrohttpd 0.9.73 or newer (MHD_run_wait); upgrade libmicrohttpd-dev, or build without it"
#endif

/* One open connection, from libmicrohttpd's "started" notification to its
 * "closed" one. */
struct conn {
    bool used;
    bool dropping;        /* shut down; libmicrohttpd closes it on its next turn */
    int fd;               /* libmicrohttpd's; only shutdown(2) here, never close */
    uint8_t addr[16];     /* the client's address, without the port */
    uint8_t addrlen;
    int64_t since_ms;     /* fw_mono_ms() when its current request began */
    uint64_t seq;         /* the same, without ties: smaller began earlier */
    uint64_t turn;        /* the event loop's turn it was accepted in */
};

struct fw_http {
    struct MHD_Daemon *d;
    fw_metrics *m;
    fw_health_fn health;
    void *ctx;
    int port;
    /* While MHD_start_daemon runs, MHD's messages from the starting thread
     * are collected here for the caller's error buffer; all others go to
     * the log. */
    pthread_t starter;
    atomic_bool starting;
    char start_err[512];

    pthread_t thread; /* runs the event loop; every callback below runs on it */
    atomic_bool stop;

    /* Owned by the loop thread (before it starts and after it is joined:
     * by the starting and stopping thread; libmicrohttpd calls back only
     * from inside MHD_start_daemon, MHD_run_wait and MHD_stop_daemon). */
    struct conn conns[FW_HTTP_HARD_LIMIT];
    uint64_t seq;
    uint64_t turn;        /* turns of the event loop (MHD_run_wait) so far */
    bool over;            /* a limit is exceeded by connections too new to go */
    fw_counter *dropped_deadline, *dropped_evicted;
    /* Exposure (fw_http_start_opts): PEM texts for HTTPS, and the basic
     * authentication's user and password; NULL when not used.  The
     * process gauges are refreshed before each /metrics render. */
    char *tls_cert, *tls_key;
    char *auth_user, *auth_pass;
    fw_gauge *rss_bytes, *open_fds;
    fw_counter *auth_failures;
    int64_t log_window_ms; /* start of the current minute of messages */
    unsigned log_count, log_suppressed;
};

static void log_suppressed(fw_http *h)
{
    if (h->log_suppressed)
        fw_log(FW_LOG_WARN, "http", "messages from the HTTP server suppressed", "count=%u",
               h->log_suppressed);
    h->log_suppressed = 0;
}

/* Opens a new minute of log messages if the current one is over, saying
 * first how many of the last one's were not written. */
static void log_window(fw_http *h, int64_t now)
{
    if (now - h->log_window_ms < FW_HTTP_LOG_WINDOW_MS)
        return;
    log_suppressed(h);
    h->log_window_ms = now;
    h->log_count = 0;
}

FW_LOG_PRINTF(2, 0)
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    fw_http *h = cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (atomic_load(&h->starting) && pthread_equal(pthread_self(), h->starter)) {
        size_t used = strlen(h->start_err);
        snprintf(h->start_err + used, sizeof h->start_err - used, "%s%s", used ? "; " : "", msg);
        return;
    }
    log_window(h, fw_mono_ms());
    if (h->log_count >= FW_HTTP_LOG_BURST) {
        h->log_suppressed++;
        return;
    }
    h->log_count++;
    fw_log(FW_LOG_WARN, "http", msg, NULL);
}

/* ---- slow clients: the connection table (see the top of the file) ---- */

/* Closes the connection by its socket: libmicrohttpd sees the end of the
 * stream (or a failed send) on its next turn and closes it. */
static void drop(struct conn *c, fw_counter *why)
{
    shutdown(c->fd, SHUT_RDWR);
    c->dropping = true;
    fw_counter_add(why, 1);
}

static bool same_addr(const struct conn *a, const struct conn *b)
{
    return a->addrlen == b->addrlen && memcmp(a->addr, b->addr, a->addrlen) == 0;
}

/* The connection whose request began first, among those from ref's address
 * if `one_addr`, and in *n how many there are.  Dropped ones no longer
 * count.  One accepted in this turn of the event loop or the last is
 * counted but not chosen: libmicrohttpd accepts up to ten connections a
 * turn before it reads any, and reads a new one in the turn after, so a
 * burst from one address (a probe at its head, clients reconnecting behind
 * it) would otherwise close the probe before its request was read — seen
 * once in CI, and in tests/test_metrics.c test_http_burst_spares_the_unread
 * every time.  NULL when every candidate is that new: the limit waits a
 * turn (shed() runs after every turn), and libmicrohttpd's own limit,
 * FW_HTTP_HARD_LIMIT, bounds what it lets in meanwhile. */
static struct conn *oldest(fw_http *h, const struct conn *ref, bool one_addr, unsigned *n)
{
    struct conn *old = NULL;
    *n = 0;
    for (size_t i = 0; i < FW_HTTP_HARD_LIMIT; i++) {
        struct conn *c = &h->conns[i];
        if (!c->used || c->dropping || (one_addr && !same_addr(c, ref)))
            continue;
        ++*n;
        if (c->turn + 1 < h->turn && (!old || c->seq < old->seq))
            old = c;
    }
    return old;
}

/* Within the limits, of ref's address and in all: the oldest that may go
 * go, one by one. */
static void shed(fw_http *h, const struct conn *ref)
{
    unsigned n;
    struct conn *victim;
    while ((victim = oldest(h, ref, true, &n)) && n > FW_HTTP_MAX_CONNS_PER_ADDR)
        drop(victim, h->dropped_evicted);
    if (n > FW_HTTP_MAX_CONNS_PER_ADDR)
        h->over = true;
    while ((victim = oldest(h, ref, false, &n)) && n > FW_HTTP_MAX_CONNS)
        drop(victim, h->dropped_evicted);
    if (n > FW_HTTP_MAX_CONNS)
        h->over = true;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    fw_http *h = cls;
    struct conn *c = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (c)
            c->used = false;
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *fdi =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!fdi)
        return; /* cannot happen: a connection has a socket */
    c = NULL;
    for (size_t i = 0; i < FW_HTTP_HARD_LIMIT && !c; i++)
        if (!h->conns[i].used)
            c = &h->conns[i];
    if (!c) {
        /* More connections than libmicrohttpd's limit: cannot happen.  One
         * without a slot would have no deadline, so it is not served. */
        shutdown(fdi->connect_fd, SHUT_RDWR);
        fw_counter_add(h->dropped_evicted, 1);
        return;
    }
    *c = (struct conn){ .used = true, .fd = fdi->connect_fd, .since_ms = fw_mono_ms(),
                        .seq = ++h->seq, .turn = h->turn };
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ai ? ai->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET) {
        c->addrlen = 4;
        memcpy(c->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        c->addrlen = 16;
        memcpy(c->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
    *socket_context = c;
    shed(h, c);
}

/* A request answered in full: the connection's next one starts now. */
static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    fw_http *h = cls;
    (void)con_cls;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        return;
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn *c = i ? i->socket_context : NULL;
    if (c && !c->dropping) {
        c->since_ms = fw_mono_ms();
        c->seq = ++h->seq;
    }
}

static void sweep(fw_http *h, int64_t now)
{
    for (size_t i = 0; i < FW_HTTP_HARD_LIMIT; i++) {
        struct conn *c = &h->conns[i];
        if (c->used && !c->dropping && now - c->since_ms >= FW_HTTP_REQUEST_DEADLINE_MS)
            drop(c, h->dropped_deadline);
    }
    /* What the limits could not take at accept time (all too new then). */
    if (h->over) {
        h->over = false;
        for (size_t i = 0; i < FW_HTTP_HARD_LIMIT; i++)
            if (h->conns[i].used && !h->conns[i].dropping)
                shed(h, &h->conns[i]);
    }
}

static void *serve(void *arg)
{
    fw_http *h = arg;
    while (!atomic_load(&h->stop)) {
        if (MHD_run_wait(h->d, FW_HTTP_TICK_MS) != MHD_YES) {
            /* libmicrohttpd has logged why, if it could; do not spin. */
            struct timespec tick = { .tv_nsec = FW_HTTP_TICK_MS * 1000000L };
            nanosleep(&tick, NULL);
        }
        h->turn++;
        int64_t now = fw_mono_ms();
        sweep(h, now);
        log_window(h, now);
    }
    return NULL;
}

static mhd_result respond(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                          enum MHD_ResponseMemoryMode mode, const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO; /* MHD closes the connection */
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    mhd_result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

#define TEXT "text/plain; charset=utf-8"

/* ---- exposure: basic authentication, TLS files, process gauges ---------- */

/* Equal, in a time that does not depend on where they differ. */
static bool same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[lb ? i % lb : 0]);
    return d == 0;
}

static bool authorized(const fw_http *h, struct MHD_Connection *c)
{
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(c, &pass);
    bool ok = user && pass;
    if (ok) {
        bool u = same_secret(user, h->auth_user);
        bool p = same_secret(pass, h->auth_pass);
        ok = u && p;
    }
    if (pass) {
        explicit_bzero(pass, strlen(pass));
        MHD_free(pass);
    }
    if (user)
        MHD_free(user);
    return ok;
}

/* A PEM file whole, as a string (libmicrohttpd takes them from memory), or
 * NULL with err naming the setting and the file. */
char *fw_read_pem(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "%s %s: cannot open: %s", what, path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4097 > cap) {
            if (cap >= (1u << 20)) {
                snprintf(err, errlen, "%s %s: larger than 1 MiB: not a PEM file", what, path);
                goto fail;
            }
            char *more = realloc(text, cap = cap ? cap * 2 : 8192);
            if (!more) {
                snprintf(err, errlen, "%s %s: out of memory", what, path);
                goto fail;
            }
            text = more;
        }
        size_t n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s %s: read error: %s", what, path, strerror(errno));
        goto fail;
    }
    fclose(f);
    text[len] = '\0';
    if (!strstr(text, "-----BEGIN ")) {
        snprintf(err, errlen, "%s %s: not a PEM file (no \"-----BEGIN\" line)", what, path);
        explicit_bzero(text, len);
        free(text);
        return NULL;
    }
    return text;
fail:
    if (text) {
        explicit_bzero(text, cap);
        free(text);
    }
    fclose(f);
    return NULL;
}

static void free_secret(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}

/* process_resident_memory_bytes and process_open_fds, as Prometheus's own
 * clients name them, read from /proc/self just before a render. */
static void refresh_process(fw_http *h)
{
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        unsigned long long size, resident;
        if (fscanf(f, "%llu %llu", &size, &resident) == 2)
            fw_gauge_set(h->rss_bytes, (double)resident * (double)sysconf(_SC_PAGESIZE));
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        unsigned n = 0;
        for (struct dirent *e; (e = readdir(d));)
            n += e->d_name[0] != '.';
        closedir(d);
        fw_gauge_set(h->open_fds, (double)(n ? n - 1 : 0)); /* not opendir's own */
    }
}

static mhd_result handle(void *cls, struct MHD_Connection *c, const char *url,
                         const char *method, const char *version, const char *upload,
                         size_t *upload_size, void **con_cls)
{
    fw_http *h = cls;
    (void)version;
    (void)upload;
    (void)con_cls;
    if (h->auth_user && !authorized(h, c)) {
        *upload_size = 0;
        fw_counter_add(h->auth_failures, 1);
        struct MHD_Response *r =
            MHD_create_response_from_buffer(13, "unauthorized\n", MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, TEXT);
        mhd_result ret = MHD_queue_basic_auth_fail_response(c, "fraudwatch", r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        *upload_size = 0; /* answer now; MHD closes rather than read a body */
        return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", 19,
                       MHD_RESPMEM_PERSISTENT, TEXT);
    }
    if (strcmp(url, "/metrics") == 0) {
        size_t len;
        refresh_process(h);
        char *text = fw_metrics_render(h->m, &len);
        if (!text)
            return respond(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", 14,
                           MHD_RESPMEM_PERSISTENT, TEXT);
        return respond(c, MHD_HTTP_OK, text, len, MHD_RESPMEM_MUST_FREE,
                       "text/plain; version=0.0.4; charset=utf-8");
    }
    if (strcmp(url, "/healthz") == 0) {
        char reason[256] = "";
        if (!h->health || h->health(h->ctx, reason, sizeof reason))
            return respond(c, MHD_HTTP_OK, "ok\n", 3, MHD_RESPMEM_PERSISTENT, TEXT);
        reason[sizeof reason - 1] = '\0';
        char body[sizeof reason + 1];
        int n = snprintf(body, sizeof body, "%s\n", reason[0] ? reason : "unhealthy");
        return respond(c, MHD_HTTP_SERVICE_UNAVAILABLE, body, (size_t)n,
                       MHD_RESPMEM_MUST_COPY, TEXT);
    }
    return respond(c, MHD_HTTP_NOT_FOUND, "not found\n", 10, MHD_RESPMEM_PERSISTENT, TEXT);
}

static void http_free(fw_http *h)
{
    free(h->tls_cert);
    free_secret(h->tls_key);
    free(h->auth_user);
    free_secret(h->auth_pass);
    free(h);
}

fw_http *fw_http_start(const char *listen, fw_metrics *m, fw_health_fn health, void *ctx,
                       char *err, size_t errlen)
{
    return fw_http_start_opts(listen, NULL, m, health, ctx, err, errlen);
}

static bool given(const char *s)
{
    return s && *s;
}

fw_http *fw_http_start_opts(const char *listen, const fw_http_opts *o, fw_metrics *m,
                            fw_health_fn health, void *ctx, char *err, size_t errlen)
{
    static const fw_http_opts none = { 0 };
    if (!o)
        o = &none;
    bool tls = given(o->tls_cert_file) || given(o->tls_key_file);
    bool auth = given(o->auth_user) || given(o->auth_password_file);
    if (tls && !(given(o->tls_cert_file) && given(o->tls_key_file))) {
        snprintf(err, errlen, "metrics: HTTPS needs both metrics.tls_cert_file and "
                 "metrics.tls_key_file");
        return NULL;
    }
    if (auth && !(given(o->auth_user) && given(o->auth_password_file))) {
        snprintf(err, errlen, "metrics: basic authentication needs both metrics.auth_user "
                 "and metrics.auth_password_file");
        return NULL;
    }
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, errlen, "cannot serve metrics over HTTPS: this libmicrohttpd was built "
                 "without TLS (GnuTLS)");
        return NULL;
    }
    struct sockaddr_storage ss;
    if (parse_listen(listen, tls && auth, &ss, err, errlen) != 0)
        return NULL;
    fw_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (tls) {
        h->tls_cert = fw_read_pem("metrics.tls_cert_file", o->tls_cert_file, err, errlen);
        if (h->tls_cert)
            h->tls_key = fw_read_pem("metrics.tls_key_file", o->tls_key_file, err, errlen);
        if (!h->tls_key) {
            http_free(h);
            return NULL;
        }
    }
    if (auth) {
        char pw[FW_SECRET_MAX], why[4400];
        if (fw_secret_read_file(o->auth_password_file, pw, sizeof pw, why, sizeof why) != 0) {
            snprintf(err, errlen, "metrics.auth_password_file: %s", why);
            explicit_bzero(pw, sizeof pw);
            http_free(h);
            return NULL;
        }
        h->auth_pass = strdup(pw);
        explicit_bzero(pw, sizeof pw);
        h->auth_user = strdup(o->auth_user);
        if (!h->auth_pass || !h->auth_user) {
            snprintf(err, errlen, "out of memory");
            http_free(h);
            return NULL;
        }
    }
    h->m = m;
    h->health = health;
    h->ctx = ctx;
    h->starter = pthread_self();
    atomic_init(&h->starting, true);
    atomic_init(&h->stop, false);

    bool v6 = ss.ss_family == AF_INET6;
    uint16_t port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                             : ((struct sockaddr_in *)&ss)->sin_port);
    /* No internal thread: ours runs the loop (see the top of the file).
     * MHD_USE_AUTO picks epoll where there is one. */
    unsigned flags = MHD_USE_ERROR_LOG | MHD_USE_AUTO | (v6 ? MHD_USE_IPv6 : 0) |
                     (tls ? MHD_USE_TLS : 0);
    struct MHD_OptionItem tls_opts[] = {
        { MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key },
        { MHD_OPTION_END, 0, NULL },
    };
    if (!tls)
        tls_opts[0].option = MHD_OPTION_END;
    h->rss_bytes = fw_metrics_gauge(m, "process_resident_memory_bytes",
                                    "Resident memory of the process (RSS), in bytes.", NULL);
    h->open_fds = fw_metrics_gauge(m, "process_open_fds", "Open file descriptors.", NULL);
    h->auth_failures = fw_metrics_counter(
        m, "fraudwatch_http_auth_failures_total",
        "Requests to /metrics or /healthz refused (401) for want of the right basic "
        "authentication (metrics.auth_user).", NULL);
    h->dropped_deadline = fw_metrics_counter(
        m, "fraudwatch_http_connections_dropped_total",
        "HTTP connections closed before their request was answered: reason=deadline, "
        "not answered within the request deadline; evicted, the oldest unfinished one "
        "when a new connection came and the limit was reached.",
        "reason=\"deadline\"");
    h->dropped_evicted = fw_metrics_counter(m, "fraudwatch_http_connections_dropped_total",
                                            NULL, "reason=\"evicted\"");
    h->log_window_ms = fw_mono_ms();
    /* The logger goes first, or MHD prints what comes before it itself. */
    h->d = MHD_start_daemon(flags, port, NULL, NULL, handle, h,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, FW_HTTP_HARD_LIMIT,
                            MHD_OPTION_CONNECTION_TIMEOUT, FW_HTTP_IDLE_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)FW_HTTP_CONN_MEMORY,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_ARRAY, tls_opts,
                            MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "cannot serve metrics on %s: %s", listen,
                 h->start_err[0] ? h->start_err : "libmicrohttpd refused to start");
        http_free(h);
        return NULL;
    }
    atomic_store(&h->starting, false);

    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info && info->port ? info->port : port;
    if (!h->port) {
        /* Older libmicrohttpd: ask the socket. */
        info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_LISTEN_FD);
        struct sockaddr_storage bound;
        socklen_t sl = sizeof bound;
        if (info && getsockname(info->listen_fd, (struct sockaddr *)&bound, &sl) == 0)
            h->port = ntohs(bound.ss_family == AF_INET6
                                ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                : ((struct sockaddr_in *)&bound)->sin_port);
    }

    /* The thread takes no signals: they are the main thread's business. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&h->thread, NULL, serve, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot serve metrics on %s: cannot start the HTTP thread: %s",
                 listen, strerror(rc));
        MHD_stop_daemon(h->d);
        http_free(h);
        return NULL;
    }
    return h;
}

int fw_http_port(const fw_http *h)
{
    return h ? h->port : 0;
}

void fw_http_stop(fw_http *h)
{
    if (!h)
        return;
    atomic_store(&h->stop, true);
    pthread_join(h->thread, NULL); /* within a turn: FW_HTTP_TICK_MS */
    MHD_stop_daemon(h->d);
    log_suppressed(h);
    http_free(h);
}

#else /* !FW_HAVE_MICROHTTPD */

struct fw_http {
    int unused;
};

fw_http *fw_http_start(const char *listen, fw_metrics *m, fw_health_fn health, void *ctx,
                       char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    (void)m;
    (void)health;
    (void)ctx;
    if (parse_listen(listen, false, &ss, err, errlen) == 0)
        snprintf(err, errlen, "cannot serve metrics on %s: this build has no libmicrohttpd "
                 "(install libmicrohttpd-dev and rebuild)", listen);
    return NULL;
}

fw_http *fw_http_start_opts(const char *listen, const fw_http_opts *o, fw_metrics *m,
                            fw_health_fn health, void *ctx, char *err, size_t errlen)
{
    (void)o;
    return fw_http_start(listen, m, health, ctx, err, errlen);
}

int fw_http_port(const fw_http *h)
{
    (void)h;
    return 0;
}

void fw_http_stop(fw_http *h)
{
    (void)h;
}

#endif

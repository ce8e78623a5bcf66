/* fraudwatch — Prometheus metrics: a registry, its series, and the HTTP
 * endpoint that serves them (/metrics, /healthz).
 *
 * Ownership: the registry owns every series it hands out; the pointers stay
 * valid until fw_metrics_free(), which must come after fw_http_stop() and
 * after every thread has stopped using them.
 *
 * Threads: registration (fw_metrics_counter/gauge/histogram) and rendering
 * take the registry's mutex and may run on any thread.  The series
 * operations (add, set, observe, get) take no lock — each is one relaxed
 * atomic operation, or a short compare-and-swap loop for doubles — and are
 * meant for the per-event path.  All of them accept NULL and do nothing, so
 * a registration that failed costs a metric, never a crash.
 *
 * Series are identified by (name, labels) with `labels` compared as a
 * string: write the pairs in the same order every time. */
#ifndef FRAUDWATCH_METRICS_H
#define FRAUDWATCH_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fw_metrics fw_metrics;
typedef struct fw_counter fw_counter;
typedef struct fw_gauge fw_gauge;
typedef struct fw_histogram fw_histogram;

/* NULL on out-of-memory. */
fw_metrics *fw_metrics_new(void);
/* Frees the registry and every series in it.  NULL is fine. */
void fw_metrics_free(fw_metrics *m);

/* Get-or-create the series (name, labels).
 *
 * name: [a-zA-Z_:][a-zA-Z0-9_:]*.  help: the # HELP text; the first non-empty
 * one given for a name is kept.  labels: the inside of {} — e.g.
 * "rule=\"R101\",severity=\"high\"" — or "" / NULL for none; values escaped
 * as fw_metrics_escape_label() does.  A name has one type for its lifetime.
 *
 * Returns NULL on misuse — the name already has another type, an invalid
 * name or labels string, a histogram whose bounds differ from the name's
 * first registration — or on out-of-memory.  Calling again with the same
 * (name, labels) returns the same pointer. */
fw_counter *fw_metrics_counter(fw_metrics *m, const char *name, const char *help,
                               const char *labels);
fw_gauge *fw_metrics_gauge(fw_metrics *m, const char *name, const char *help,
                           const char *labels);
/* bounds: bucket upper bounds, finite and strictly ascending (+Inf is
 * implied and must not be given); nbounds may be 0 (only +Inf).  The
 * bounds are copied.  `labels` must not use the name "le". */
fw_histogram *fw_metrics_histogram(fw_metrics *m, const char *name, const char *help,
                                   const char *labels, const double *bounds, size_t nbounds);

void fw_counter_add(fw_counter *c, uint64_t n);
uint64_t fw_counter_get(const fw_counter *c);

void fw_gauge_set(fw_gauge *g, double v);
void fw_gauge_add(fw_gauge *g, double v);
double fw_gauge_get(const fw_gauge *g);

/* Counts v in the first bucket whose bound is >= v (+Inf for larger values
 * and NaN) and adds it to the sum, a double updated by compare-and-swap. */
void fw_histogram_observe(fw_histogram *h, double v);

/* The registry in the Prometheus text exposition format 0.0.4: # HELP and
 * # TYPE once per name, names in byte order, series of a name in byte order
 * of their labels; histograms as cumulative _bucket{le="..."} lines ending
 * with le="+Inf", then _sum and _count; numbers in their shortest exact
 * form (fw_numtext), +Inf/-Inf/NaN as the format spells them.  A malloc'd,
 * NUL-terminated string the caller frees, with *len (if not NULL) set to its
 * length; "" for an empty registry, NULL only when m is NULL (running out of
 * memory aborts, as every fw_buf does). */
char *fw_metrics_render(fw_metrics *m, size_t *len);

/* Writes `value` (NULL: "") escaped for use between the quotes of a label
 * value: \ as \\, " as \", newline as \n, and each invalid UTF-8 byte as
 * U+FFFD.  Like snprintf: always NUL-terminates when buflen > 0, returns the
 * length the whole escaped value needs (not counting the NUL), and when it
 * must cut short it cuts between escapes, never inside one. */
size_t fw_metrics_escape_label(const char *value, char *buf, size_t buflen);

/* ---- HTTP endpoint ---------------------------------------------------------- */

typedef struct fw_http fw_http;

/* Health: true when healthy.  May write a short reason (NUL-terminated) into
 * `reason`; it is the body of a 503.  Called on the HTTP thread, once per
 * GET /healthz, so it must be thread-safe with respect to the rest of the
 * program (read atomics, take no lock held on the event path). */
typedef bool (*fw_health_fn)(void *ctx, char *reason, size_t reasonlen);

/* Starts serving on `listen`: "127.0.0.1:9464", "[::1]:9464" or
 * "localhost:9464" (= 127.0.0.1).  Only loopback addresses (127.0.0.0/8,
 * ::1) are accepted — the endpoint has no authentication; expose it
 * through a proxy or a sidecar.  Port 0 picks a free port (fw_http_port()).
 *
 *   GET /metrics   200, text/plain; version=0.0.4 — fw_metrics_render(m)
 *   GET /healthz   200 "ok\n", or 503 with the reason and a newline
 *   other paths    404
 *   not GET/HEAD   405 with "Allow: GET, HEAD"
 *
 * Slow clients cannot take the endpoint down: a request must arrive whole
 * and be answered within 5 s of its connection's opening, and a new
 * connection is let in even when the slots are taken — beyond 16 from its
 * address or 48 in all, the oldest unfinished one goes instead.  Both are counted in `m` as
 * fraudwatch_http_connections_dropped_total{reason="deadline"|"evicted"}
 * (docs/observability.md, "Slow clients").
 *
 * One thread of its own runs the server; `health` and the rendering run on
 * it.  `health` may be NULL (always healthy).  `m` and `ctx` are borrowed
 * until fw_http_stop().  NULL on failure, with the reason in err. */
fw_http *fw_http_start(const char *listen, fw_metrics *m, fw_health_fn health, void *ctx,
                       char *err, size_t errlen);
/* How the endpoint is exposed (issue 13).  NULL, or every member NULL or
 * "": plain HTTP on the loopback, as fw_http_start().
 *   tls_cert_file + tls_key_file: HTTPS (PEM files, read at start);
 *   auth_user + auth_password_file: HTTP basic authentication on every
 *     path (401 without it), the password the file's first line
 *     (fw_secret_read_file(): refused when other users may read it);
 *   both: `listen` may be any address (0.0.0.0:9464, [::]:9464).
 * A file that cannot be read fails the start with its name in err. */
typedef struct fw_http_opts {
    const char *tls_cert_file, *tls_key_file;
    const char *auth_user, *auth_password_file;
} fw_http_opts;
fw_http *fw_http_start_opts(const char *listen, const fw_http_opts *o, fw_metrics *m,
                            fw_health_fn health, void *ctx, char *err, size_t errlen);
/* The bound port. */
int fw_http_port(const fw_http *h);
/* A PEM file's text (at most 1 MiB, with a "-----BEGIN" line), malloc'd;
 * NULL with "WHAT PATH: reason" in err.  Free it with explicit_bzero()
 * first: it may hold a private key. */
char *fw_read_pem(const char *what, const char *path, char *err, size_t errlen);
/* Stops the server and waits for its thread (a fraction of a second).
 * NULL is fine. */
void fw_http_stop(fw_http *h);

#endif

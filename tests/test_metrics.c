/* test_metrics.c — observability: the Prometheus registry and its exposition
 * text, the HTTP endpoint (spoken to through a plain socket, as Prometheus
 * would, and by slow clients on a thread of their own), and the logfmt
 * logger. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "fraudwatch/log.h"
#include "fraudwatch/metrics.h"

/* ---- registry and exposition text ------------------------------------------ */

static void test_render_exact(void **state)
{
    (void)state;
    fw_metrics *m = fw_metrics_new();
    assert_non_null(m);

    char *empty = fw_metrics_render(m, NULL);
    assert_string_equal(empty, "");
    free(empty);

    fw_counter *events = fw_metrics_counter(m, "fw_test_events_total", "Events seen.", "");
    fw_counter *r2 = fw_metrics_counter(m, "fw_test_alerts_total", "Alerts, by rule.",
                                        "rule=\"R2\",severity=\"low\"");
    fw_counter *r1 = fw_metrics_counter(m, "fw_test_alerts_total", "ignored: help is used once",
                                        "rule=\"R1\",severity=\"high\"");
    fw_gauge *w1 = fw_metrics_gauge(m, "fw_test_queue_depth", "Queue depth.\nper worker \\ shard",
                                    "worker=\"1\"");
    fw_gauge *w0 = fw_metrics_gauge(m, "fw_test_queue_depth", NULL, "worker=\"0\"");
    fw_gauge *w2 = fw_metrics_gauge(m, "fw_test_queue_depth", NULL, "worker=\"2\"");
    static const double bounds[] = { 0.005, 0.1, 1, 2.5 };
    fw_histogram *lat = fw_metrics_histogram(m, "fw_test_latency_seconds", "Latency.", NULL,
                                             bounds, 4);
    fw_histogram *lat_x = fw_metrics_histogram(m, "fw_test_latency_seconds", NULL,
                                               "stage=\"x\"", bounds, 4);
    fw_histogram *only_inf = fw_metrics_histogram(m, "fw_test_sizes", "", "", NULL, 0);
    assert_non_null(events);
    assert_non_null(r1);
    assert_non_null(r2);
    assert_non_null(w0);
    assert_non_null(w1);
    assert_non_null(w2);
    assert_non_null(lat);
    assert_non_null(lat_x);
    assert_non_null(only_inf);

    /* get-or-create: the same series again is the same pointer */
    assert_ptr_equal(fw_metrics_counter(m, "fw_test_alerts_total", NULL,
                                        "rule=\"R2\",severity=\"low\""), r2);
    assert_ptr_equal(fw_metrics_histogram(m, "fw_test_latency_seconds", NULL, "", bounds, 4), lat);

    fw_counter_add(events, 12345678901234ULL);
    fw_counter_add(r2, 3);
    fw_counter_add(r2, 4);
    assert_int_equal(fw_counter_get(r2), 7);
    fw_gauge_set(w0, 2);
    fw_gauge_add(w0, -3.5);
    assert_true(fw_gauge_get(w0) == -1.5);
    fw_gauge_set(w1, 0.1);
    fw_gauge_set(w2, INFINITY);
    /* binary-exact values, so the sum is exact whatever the order */
    const double obs[] = { 0.00390625, 0.0625, 0.5, 0.5, 1 /* on a bound: le */, 2, 4 };
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        fw_histogram_observe(lat, obs[i]);
    fw_histogram_observe(only_inf, 1e9);

    size_t len;
    char *text = fw_metrics_render(m, &len);
    const char *want =
        "# HELP fw_test_alerts_total Alerts, by rule.\n"
        "# TYPE fw_test_alerts_total counter\n"
        "fw_test_alerts_total{rule=\"R1\",severity=\"high\"} 0\n"
        "fw_test_alerts_total{rule=\"R2\",severity=\"low\"} 7\n"
        "# HELP fw_test_events_total Events seen.\n"
        "# TYPE fw_test_events_total counter\n"
        "fw_test_events_total 12345678901234\n"
        "# HELP fw_test_latency_seconds Latency.\n"
        "# TYPE fw_test_latency_seconds histogram\n"
        "fw_test_latency_seconds_bucket{le=\"0.005\"} 1\n"
        "fw_test_latency_seconds_bucket{le=\"0.1\"} 2\n"
        "fw_test_latency_seconds_bucket{le=\"1\"} 5\n"
        "fw_test_latency_seconds_bucket{le=\"2.5\"} 6\n"
        "fw_test_latency_seconds_bucket{le=\"+Inf\"} 7\n"
        "fw_test_latency_seconds_sum 8.06640625\n"
        "fw_test_latency_seconds_count 7\n"
        "fw_test_latency_seconds_bucket{stage=\"x\",le=\"0.005\"} 0\n"
        "fw_test_latency_seconds_bucket{stage=\"x\",le=\"0.1\"} 0\n"
        "fw_test_latency_seconds_bucket{stage=\"x\",le=\"1\"} 0\n"
        "fw_test_latency_seconds_bucket{stage=\"x\",le=\"2.5\"} 0\n"
        "fw_test_latency_seconds_bucket{stage=\"x\",le=\"+Inf\"} 0\n"
        "fw_test_latency_seconds_sum{stage=\"x\"} 0\n"
        "fw_test_latency_seconds_count{stage=\"x\"} 0\n"
        "# HELP fw_test_queue_depth Queue depth.\\nper worker \\\\ shard\n"
        "# TYPE fw_test_queue_depth gauge\n"
        "fw_test_queue_depth{worker=\"0\"} -1.5\n"
        "fw_test_queue_depth{worker=\"1\"} 0.1\n"
        "fw_test_queue_depth{worker=\"2\"} +Inf\n"
        "# TYPE fw_test_sizes histogram\n"
        "fw_test_sizes_bucket{le=\"+Inf\"} 1\n"
        "fw_test_sizes_sum 1000000000\n"
        "fw_test_sizes_count 1\n";
    assert_string_equal(text, want);
    assert_int_equal(len, strlen(want));
    free(text);
    fw_metrics_free(m);
}

static void test_escape_label(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(fw_metrics_escape_label("a\\b\"c\nd", buf, sizeof buf), 10);
    assert_string_equal(buf, "a\\\\b\\\"c\\nd");
    /* UTF-8 is kept; invalid bytes become U+FFFD so the scrape stays valid */
    fw_metrics_escape_label("安全", buf, sizeof buf);
    assert_string_equal(buf, "安全");
    fw_metrics_escape_label("a\xff" "b\xe5\xae", buf, sizeof buf);
    assert_string_equal(buf, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd");
    /* snprintf-like: the needed length, and a cut between escapes only */
    assert_int_equal(fw_metrics_escape_label("ab\"", buf, 4), 4);
    assert_string_equal(buf, "ab");
    assert_int_equal(fw_metrics_escape_label("ab\"", buf, 5), 4);
    assert_string_equal(buf, "ab\\\"");
    assert_int_equal(fw_metrics_escape_label("x", NULL, 0), 1);
    assert_int_equal(fw_metrics_escape_label(NULL, buf, sizeof buf), 0);
    assert_string_equal(buf, "");

    /* an escaped value is accepted as a label and renders as written */
    fw_metrics *m = fw_metrics_new();
    char labels[128];
    fw_metrics_escape_label("say \"hi\"\\\n", buf, sizeof buf);
    snprintf(labels, sizeof labels, "reason=\"%s\"", buf);
    fw_counter *c = fw_metrics_counter(m, "fw_test_malformed_total", "By reason.", labels);
    assert_non_null(c);
    fw_counter_add(c, 2);
    char *text = fw_metrics_render(m, NULL);
    assert_non_null(strstr(text, "fw_test_malformed_total{reason=\"say \\\"hi\\\"\\\\\\n\"} 2\n"));
    free(text);
    fw_metrics_free(m);
}

static void test_misuse(void **state)
{
    (void)state;
    fw_metrics *m = fw_metrics_new();
    static const double b[] = { 1, 2 };
    static const double b2[] = { 1, 3 };
    static const double desc[] = { 2, 1 };
    static const double nan_b[] = { 1, NAN };
    static const double inf_b[] = { 1, INFINITY };

    assert_non_null(fw_metrics_counter(m, "fw_x", "x", ""));
    assert_null(fw_metrics_gauge(m, "fw_x", "x", ""));            /* type clash */
    assert_null(fw_metrics_gauge(m, "fw_x", "x", "a=\"1\""));     /* ... any labels */
    assert_null(fw_metrics_histogram(m, "fw_x", "x", "", b, 2));
    assert_non_null(fw_metrics_histogram(m, "fw_h", "h", "", b, 2));
    assert_null(fw_metrics_counter(m, "fw_h", "h", ""));
    assert_null(fw_metrics_histogram(m, "fw_h", "h", "a=\"1\"", b2, 2)); /* other bounds */
    assert_null(fw_metrics_histogram(m, "fw_h2", "h", "", desc, 2));
    assert_null(fw_metrics_histogram(m, "fw_h2", "h", "", nan_b, 2));
    assert_null(fw_metrics_histogram(m, "fw_h2", "h", "", inf_b, 2));
    assert_null(fw_metrics_histogram(m, "fw_h2", "h", "", NULL, 2));
    assert_null(fw_metrics_histogram(m, "fw_h2", "h", "le=\"1\"", b, 2));

    static const char *const bad_names[] = { "", "1abc", "a-b", "a b", "é" };
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        assert_null(fw_metrics_counter(m, bad_names[i], "x", ""));
    assert_null(fw_metrics_counter(m, NULL, "x", ""));
    assert_non_null(fw_metrics_counter(m, "ns:sub_total", "colons are allowed", ""));

    static const char *const bad_labels[] = {
        "rule=R1", "rule=\"R1", "rule=\"a\"b\"", "rule=\"a\",", ",rule=\"a\"",
        "__x=\"1\"", "a=\"1\",a=\"2\"", "a=\"line\nbreak\"", "a=\"\\x\"", "a=\"\xff\"",
        "1a=\"1\"", "a = \"1\"", "a=\"1\" ",
    };
    for (size_t i = 0; i < sizeof bad_labels / sizeof bad_labels[0]; i++)
        assert_null(fw_metrics_counter(m, "fw_y_total", "y", bad_labels[i]));
    assert_non_null(fw_metrics_counter(m, "fw_y_total", "y", "a=\"\",b=\"\\\\\\\"\\n\""));
    assert_ptr_equal(fw_metrics_counter(m, "fw_z", "z", NULL), fw_metrics_counter(m, "fw_z", "z", ""));

    /* the failures left nothing behind: no family for fw_h2, no series of fw_x */
    char *text = fw_metrics_render(m, NULL);
    assert_null(strstr(text, "fw_h2"));
    assert_null(strstr(text, "fw_x{"));
    free(text);

    /* NULL everywhere is harmless */
    assert_null(fw_metrics_counter(NULL, "fw_x", "x", ""));
    fw_counter_add(NULL, 1);
    fw_gauge_set(NULL, 1);
    fw_gauge_add(NULL, 1);
    fw_histogram_observe(NULL, 1);
    assert_int_equal(fw_counter_get(NULL), 0);
    assert_true(fw_gauge_get(NULL) == 0.0);
    assert_null(fw_metrics_render(NULL, NULL));
    fw_metrics_free(NULL);
    fw_http_stop(NULL);
    fw_metrics_free(m);
}

/* ---- concurrency ---------------------------------------------------------- */

enum { THREADS = 4, ROUNDS = 200000 };

struct shared {
    fw_metrics *m;
    fw_counter *c;
    fw_gauge *g;
    fw_histogram *h;
    atomic_int running;
    atomic_int next_id;
    atomic_int mismatches; /* cmocka asserts belong to the main thread */
};

static void *hammer(void *arg)
{
    struct shared *s = arg;
    /* registration races too: every thread asks for the same series */
    fw_counter *c = fw_metrics_counter(s->m, "fw_conc_total", "c", "kind=\"shared\"");
    if (c != s->c)
        atomic_fetch_add(&s->mismatches, 1);
    char labels[32];
    snprintf(labels, sizeof labels, "thread=\"%d\"", atomic_fetch_add(&s->next_id, 1));
    fw_counter *mine = fw_metrics_counter(s->m, "fw_conc_per_thread_total", "p", labels);
    if (!mine)
        atomic_fetch_add(&s->mismatches, 1);
    for (int i = 0; i < ROUNDS; i++) {
        fw_counter_add(c, 1);
        fw_counter_add(mine, 1);
        fw_gauge_add(s->g, 1.0);
        fw_histogram_observe(s->h, (i & 1) ? 0.5 : 2.0);
    }
    return NULL;
}

static void *scraper(void *arg)
{
    struct shared *s = arg;
    while (atomic_load(&s->running)) {
        char *t = fw_metrics_render(s->m, NULL);
        if (!t)
            atomic_fetch_add(&s->mismatches, 1);
        free(t);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    static const double b[] = { 1 };
    struct shared s = { .m = fw_metrics_new() };
    s.c = fw_metrics_counter(s.m, "fw_conc_total", "c", "kind=\"shared\"");
    s.g = fw_metrics_gauge(s.m, "fw_conc_gauge", "g", "");
    s.h = fw_metrics_histogram(s.m, "fw_conc_seconds", "h", "", b, 1);
    atomic_init(&s.running, 1);
    atomic_init(&s.next_id, 0);
    atomic_init(&s.mismatches, 0);

    pthread_t t[THREADS], scr;
    assert_int_equal(pthread_create(&scr, NULL, scraper, &s), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &s), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&s.running, 0);
    pthread_join(scr, NULL);

    assert_int_equal(atomic_load(&s.mismatches), 0);
    assert_int_equal(fw_counter_get(s.c), (uint64_t)THREADS * ROUNDS);
    for (int i = 0; i < THREADS; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "thread=\"%d\"", i);
        assert_int_equal(fw_counter_get(fw_metrics_counter(s.m, "fw_conc_per_thread_total",
                                                           NULL, labels)), ROUNDS);
    }
    assert_true(fw_gauge_get(s.g) == (double)THREADS * ROUNDS);
    char *text = fw_metrics_render(s.m, NULL);
    char want[256];
    snprintf(want, sizeof want,
             "fw_conc_seconds_bucket{le=\"1\"} %d\n"
             "fw_conc_seconds_bucket{le=\"+Inf\"} %d\n"
             "fw_conc_seconds_sum %d\n"
             "fw_conc_seconds_count %d\n",
             THREADS * ROUNDS / 2, THREADS * ROUNDS, THREADS * ROUNDS / 2 * 5 / 2,
             THREADS * ROUNDS);
    assert_non_null(strstr(text, want));
    free(text);
    fw_metrics_free(s.m);
}

/* ---- HTTP ------------------------------------------------------------------- */

/* One request over a fresh connection; returns the status (or -1) and the
 * whole response, headers and body, in resp.  Each send and receive may
 * wait up to `guard_s` seconds: a hang guard, never a measurement. */
static int http_within(int family, int port, const char *request, char *resp, size_t resplen,
                       int guard_s)
{
    resp[0] = '\0';
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { .tv_sec = guard_s };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_storage ss = { 0 };
    socklen_t sl;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof *a;
    }
    int status = -1;
    size_t got = 0, len = strlen(request);
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0)
        goto out;
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, request + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            goto out;
        off += (size_t)n;
    }
    for (;;) {
        ssize_t n = recv(fd, resp + got, resplen - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == resplen - 1)
            break;
    }
    resp[got] = '\0';
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        status = -1;
out:
    close(fd);
    return status;
}

static int http(int family, int port, const char *request, char *resp, size_t resplen)
{
    return http_within(family, port, request, resp, resplen, 5);
}

static const char *body_of(const char *resp)
{
    const char *p = strstr(resp, "\r\n\r\n");
    return p ? p + 4 : "";
}

static atomic_bool is_healthy;

static bool health(void *ctx, char *reason, size_t len)
{
    (void)ctx;
    if (atomic_load(&is_healthy)) {
        snprintf(reason, len, "fine");
        return true;
    }
    snprintf(reason, len, "main loop stalled for 12000 ms");
    return false;
}

/* An endpoint on a free loopback port serving m (the test is skipped, m
 * freed, where this build has no libmicrohttpd). */
static fw_http *http_or_skip(fw_metrics *m, fw_health_fn check)
{
    char err[512] = "";
    fw_http *h = fw_http_start("127.0.0.1:0", m, check, NULL, err, sizeof err);
    if (!h && strstr(err, "no libmicrohttpd")) {
        fw_metrics_free(m);
        skip();
    }
    assert_non_null(h);
    return h;
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

static void test_http(void **state)
{
    (void)state;
    char err[512] = "", resp[65536];
    fw_metrics *m = fw_metrics_new();
    fw_counter *c = fw_metrics_counter(m, "fw_http_requests_total", "Requests.", "code=\"200\"");
    fw_counter_add(c, 42);
    atomic_store(&is_healthy, true);

    fw_http *h = http_or_skip(m, health);
    int port = fw_http_port(h);
    assert_true(port > 0 && port < 65536);

    assert_int_equal(http(AF_INET, port, GET("/metrics"), resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
    char *want = fw_metrics_render(m, NULL);
    assert_string_equal(body_of(resp), want);
    free(want);
    /* a query string does not change the path */
    assert_int_equal(http(AF_INET, port, GET("/metrics?x=1"), resp, sizeof resp), 200);

    assert_int_equal(http(AF_INET, port, GET("/healthz"), resp, sizeof resp), 200);
    assert_string_equal(body_of(resp), "ok\n");
    atomic_store(&is_healthy, false);
    assert_int_equal(http(AF_INET, port, GET("/healthz"), resp, sizeof resp), 503);
    assert_string_equal(body_of(resp), "main loop stalled for 12000 ms\n");

    assert_int_equal(http(AF_INET, port, GET("/"), resp, sizeof resp), 404);
    assert_int_equal(http(AF_INET, port, GET("/metricsx"), resp, sizeof resp), 404);

    assert_int_equal(http(AF_INET, port,
                          "POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                          "Connection: close\r\n\r\nhello", resp, sizeof resp), 405);
    assert_non_null(strstr(resp, "Allow: GET, HEAD"));
    assert_int_equal(http(AF_INET, port,
                          "DELETE /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                          resp, sizeof resp), 405);
    assert_int_equal(http(AF_INET, port,
                          "HEAD /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                          resp, sizeof resp), 200);
    assert_string_equal(body_of(resp), "");

    /* the port is taken now: a second server says so */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_null(fw_http_start(addr, m, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "cannot serve metrics on 127.0.0.1:"));
    assert_non_null(strstr(err, "in use")); /* MHD's reason, not a guess */

    fw_http_stop(h);

    /* localhost is 127.0.0.1; no health callback: always ok */
    h = fw_http_start("localhost:0", m, NULL, NULL, err, sizeof err);
    assert_non_null(h);
    assert_int_equal(http(AF_INET, fw_http_port(h), GET("/healthz"), resp, sizeof resp), 200);
    fw_http_stop(h);

    /* IPv6 loopback, where the machine has it */
    h = fw_http_start("[::1]:0", m, health, NULL, err, sizeof err);
    if (h) {
        assert_int_equal(http(AF_INET6, fw_http_port(h), GET("/metrics"), resp, sizeof resp), 200);
        assert_non_null(strstr(body_of(resp), "fw_http_requests_total{code=\"200\"} 42\n"));
        fw_http_stop(h);
    } else {
        print_message("[::1] unavailable here (%s); IPv6 not tested\n", err);
    }
    fw_metrics_free(m);
}

static void test_http_refuses(void **state)
{
    (void)state;
    fw_metrics *m = fw_metrics_new();
    char err[512];
    static const char *const not_loopback[] = {
        "0.0.0.0:9464", "192.168.1.10:9464", ":9464", "[::]:9464", "[2001:db8::1]:9464",
        "[::ffff:127.0.0.1]:9464",
    };
    for (size_t i = 0; i < sizeof not_loopback / sizeof not_loopback[0]; i++) {
        err[0] = '\0';
        assert_null(fw_http_start(not_loopback[i], m, NULL, NULL, err, sizeof err));
        assert_non_null(strstr(err, "not a loopback address"));
        assert_non_null(strstr(err, not_loopback[i]));
    }
    static const char *const malformed[] = {
        "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:12x", "::1:9464",
        "[::1]9464", "example.com:9464", "127.0.0.1:-1",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        err[0] = '\0';
        assert_null(fw_http_start(malformed[i], m, NULL, NULL, err, sizeof err));
        assert_non_null(strstr(err, "metrics listen address"));
    }
    assert_null(fw_http_start(NULL, m, NULL, NULL, err, sizeof err));
    fw_metrics_free(m);
}

/* ---- HTTP under slow clients ---------------------------------------------- */

/* A slow-loris client on a thread of its own: `n` connections, each sends the
 * start of a request and then one more header byte every half second, never
 * finishing it.  With `reconnect`, a connection the server ends is opened
 * again at once, as an attacker would (at most `budget` times).  All come
 * from 127.0.0.1, or with `spread` each from its own loopback address
 * (127.0.0.2, .3, ...).  Bounded: it stops when told, after `max_rounds`
 * half-seconds, or (without `reconnect`) when the server has ended them all. */
enum { TRICKLE_MAX = 100 };

struct trickle {
    int port, n, budget, max_rounds;
    bool reconnect, spread;
    atomic_bool stop;
    atomic_int rounds;        /* half-seconds done */
    atomic_int server_ended;  /* connections the server closed (or answered) */
    atomic_int bind_failed;   /* a 127.0.0.x source was refused; 127.0.0.1 used */
    /* read after the thread is joined */
    int min_trickled; /* fewest bytes trickled on a connection the server ended; -1: none */
    int fd[TRICKLE_MAX];
    int trickled[TRICKLE_MAX];
};

/* A connection to 127.0.0.1:port — from the loopback address `src` (host
 * order), or any if 0 — that has sent the start of a request and no more;
 * -1 if it could not.  *bind_failed is set when `src` was refused and the
 * kernel's choice used instead. */
static int open_partial(int port, uint32_t src, atomic_int *bind_failed)
{
    static const char start[] = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { .tv_sec = 2 }; /* connect and the first send: a hang guard */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (src) {
        struct sockaddr_in a = { .sin_family = AF_INET };
        a.sin_addr.s_addr = htonl(src);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
            atomic_fetch_add(bind_failed, 1);
    }
    struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 ||
        send(fd, start, sizeof start - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof start - 1)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Connection i: from 127.0.0.(2 + i) with `spread`, else 127.0.0.1. */
static int trickle_open(struct trickle *t, int i)
{
    return open_partial(t->port, t->spread ? INADDR_LOOPBACK + 1 + (uint32_t)i : 0,
                        &t->bind_failed);
}

/* Did the server end the connection: end of stream, a reset, or an answer
 * (an error status) to a request that is not finished? */
static bool ended_by_server(int fd)
{
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n >= 0)
        return true;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        return true;
    n = send(fd, "a", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK;
}

static void *trickler(void *arg)
{
    struct trickle *t = arg;
    int open = 0;
    t->min_trickled = -1;
    for (int i = 0; i < t->n; i++) {
        t->fd[i] = trickle_open(t, i);
        t->trickled[i] = 0;
        open += t->fd[i] >= 0;
    }
    const struct timespec half = { .tv_nsec = 500 * 1000 * 1000 };
    while (!atomic_load(&t->stop) && atomic_load(&t->rounds) < t->max_rounds &&
           (open > 0 || t->reconnect)) {
        nanosleep(&half, NULL);
        for (int i = 0; i < t->n; i++) {
            if (t->fd[i] >= 0 && !ended_by_server(t->fd[i])) {
                t->trickled[i]++; /* ended_by_server sent the byte */
                continue;
            }
            if (t->fd[i] >= 0) {
                atomic_fetch_add(&t->server_ended, 1);
                if (t->min_trickled < 0 || t->trickled[i] < t->min_trickled)
                    t->min_trickled = t->trickled[i];
                close(t->fd[i]);
                t->fd[i] = -1;
                open--;
            }
            if (t->reconnect && t->budget > 0) {
                t->budget--;
                t->fd[i] = trickle_open(t, i);
                t->trickled[i] = 0;
                open += t->fd[i] >= 0;
            }
        }
        atomic_fetch_add(&t->rounds, 1);
    }
    for (int i = 0; i < t->n; i++)
        if (t->fd[i] >= 0)
            close(t->fd[i]);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000 };
    nanosleep(&ts, NULL);
}

/* Starts `t` and waits (at most 20 s, a hang guard) until its connections
 * are open and have trickled twice. */
static pthread_t trickle_start(struct trickle *t)
{
    pthread_t tid;
    assert_int_equal(pthread_create(&tid, NULL, trickler, t), 0);
    for (int i = 0; i < 200 && atomic_load(&t->rounds) < 2; i++)
        sleep_ms(100);
    return tid;
}

static void trickle_stop(struct trickle *t, pthread_t tid)
{
    atomic_store(&t->stop, true);
    pthread_join(tid, NULL);
    if (atomic_load(&t->bind_failed))
        print_message("127.0.0.x source addresses refused here; 127.0.0.1 used instead\n");
}

/* `count` requests, each from a fresh connection, two seconds apart, each
 * given 10 s (a hang guard) to be answered with `status` and a body
 * containing `body`.  Returns how many were, stopping at the first that was
 * not; its response (or "") stays in resp. */
static int probe(int port, const char *request, int status, const char *body, int count,
                 char *resp, size_t resplen)
{
    for (int i = 0; i < count; i++) {
        if (i)
            sleep_ms(2000);
        if (http_within(AF_INET, port, request, resp, resplen, 10) != status ||
            !strstr(body_of(resp), body))
            return i;
    }
    return count;
}

/* Issue 10, item 7: 100 connections that trickle their headers — more than
 * the server holds — from 100 loopback addresses, reconnecting whenever the
 * server drops one.  /healthz from a fresh connection is answered all along,
 * and the server sheds the slow ones.  Before: the slow connections held
 * every slot as long as they trickled, and a probe waited in the backlog. */
static void test_http_slow_clients(void **state)
{
    (void)state;
    char resp[65536];
    fw_metrics *m = fw_metrics_new();
    atomic_store(&is_healthy, true);
    fw_http *h = http_or_skip(m, health);

    struct trickle *t = calloc(1, sizeof *t);
    assert_non_null(t);
    *t = (struct trickle){ .port = fw_http_port(h), .n = 100, .spread = true,
                           .reconnect = true, .budget = 5000, .max_rounds = 60 };
    pthread_t tid = trickle_start(t);
    int ok = probe(fw_http_port(h), GET("/healthz"), 200, "ok\n", 5, resp, sizeof resp);
    trickle_stop(t, tid);
    int ended = atomic_load(&t->server_ended);
    free(t);
    fw_http_stop(h);
    fw_metrics_free(m);

    if (ok < 5)
        print_message("/healthz probe %d of 5 under slow clients: %s\n", ok + 1,
                      resp[0] ? resp : "no answer within 10 s");
    assert_int_equal(ok, 5);
    assert_true(ended > 0); /* the slow connections were shed, not served forever */
}

/* The same from the probe's own address, 127.0.0.1 — as on a real host, where
 * every local client and every local attacker is 127.0.0.1: a limit per
 * address must not lock out the address's next, quick request.  Here the
 * probe is a scrape. */
static void test_http_slow_clients_same_address(void **state)
{
    (void)state;
    char resp[65536];
    fw_metrics *m = fw_metrics_new();
    fw_counter_add(fw_metrics_counter(m, "fw_slow_test_total", "x", ""), 7);
    fw_http *h = http_or_skip(m, NULL);

    struct trickle *t = calloc(1, sizeof *t);
    assert_non_null(t);
    *t = (struct trickle){ .port = fw_http_port(h), .n = 100, .reconnect = true,
                           .budget = 5000, .max_rounds = 60 };
    pthread_t tid = trickle_start(t);
    int ok = probe(fw_http_port(h), GET("/metrics"), 200, "\nfw_slow_test_total 7\n", 5, resp,
                   sizeof resp);
    trickle_stop(t, tid);
    int ended = atomic_load(&t->server_ended);
    free(t);
    fw_http_stop(h);
    fw_metrics_free(m);

    if (ok < 5)
        print_message("/metrics probe %d of 5 under slow clients: %s\n", ok + 1,
                      resp[0] ? resp : "no answer within 10 s");
    assert_int_equal(ok, 5);
    assert_true(ended > 0);
}

/* A connection to 127.0.0.1 that sends `request` (NULL: nothing) and
 * is left open; -1 when it cannot connect. */
static int open_loopback(int port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        (request && send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request))) {
        close(fd);
        return -1;
    }
    return fd;
}

static atomic_int hold_ms;   /* > 0: the next /healthz holds the server thread */

static bool slow_health(void *ctx, char *reason, size_t len)
{
    (void)ctx;
    int ms = atomic_exchange(&hold_ms, 0);
    if (ms > 0)
        sleep_ms(ms);
    snprintf(reason, len, "fine");
    return true;
}

/* The burst that pushed a probe out (seen once in CI, under load): while the
 * server thread is held up, the probe connects and sends its request, and
 * dozens of connections from the same address queue behind it.  The server
 * then accepts them in series of ten a turn, each newcomer beyond the
 * per-address limit closing the oldest of that address, and the probe,
 * accepted at the head of the burst and not read yet, became the oldest
 * before its turn to be read came.  A connection now has the turn it was
 * accepted in and the next before it can be pushed out: the probe is
 * answered.  (If this machine is too slow to queue the burst within the
 * hold, the probe is answered either way: the test can miss the old
 * behaviour but not fail the new.) */
static void test_http_burst_spares_the_unread(void **state)
{
    (void)state;
    char resp[65536];
    fw_metrics *m = fw_metrics_new();
    fw_counter_add(fw_metrics_counter(m, "fw_burst_test_total", "x", ""), 3);
    fw_http *h = http_or_skip(m, slow_health);
    int port = fw_http_port(h);
    enum { OLD = 14, BURST = 30 };
    int old[OLD], burst[BURST];
    for (int i = 0; i < OLD; i++)
        assert_true((old[i] = open_loopback(port, NULL)) >= 0);
    sleep_ms(300);                       /* all accepted: the oldest of the address */
    atomic_store(&hold_ms, 1500);
    int holder = open_loopback(port, GET("/healthz"));
    assert_true(holder >= 0);
    sleep_ms(200);                       /* the server thread is in slow_health now */
    int probe_fd = open_loopback(port, GET("/metrics"));
    assert_true(probe_fd >= 0);
    for (int i = 0; i < BURST; i++)
        assert_true((burst[i] = open_loopback(port, NULL)) >= 0);
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(probe_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(probe_fd, resp + got, sizeof resp - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == sizeof resp - 1)
            break;
    }
    resp[got] = '\0';
    close(probe_fd);
    close(holder);
    for (int i = 0; i < OLD; i++)
        close(old[i]);
    for (int i = 0; i < BURST; i++)
        close(burst[i]);
    fw_http_stop(h);
    fw_metrics_free(m);
    if (!strstr(resp, "\nfw_burst_test_total 3\n"))
        print_message("probe after the burst: %s\n", got ? resp : "closed without an answer");
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    assert_non_null(strstr(body_of(resp), "\nfw_burst_test_total 3\n"));
}

/* A request has a deadline as a whole: a few connections — far below every
 * connection limit — that keep trickling header bytes are closed by the
 * server anyway, and counted.  Before, each byte restarted the inactivity
 * timeout and they stayed open for as long as they trickled.  The 30 s the
 * trickler gives them is a hang guard, not the bound being tested. */
static void test_http_request_deadline(void **state)
{
    (void)state;
    char resp[65536];
    fw_metrics *m = fw_metrics_new();
    fw_http *h = http_or_skip(m, NULL);

    struct trickle *t = calloc(1, sizeof *t);
    assert_non_null(t);
    *t = (struct trickle){ .port = fw_http_port(h), .n = 4, .max_rounds = 60 };
    pthread_t tid;
    assert_int_equal(pthread_create(&tid, NULL, trickler, t), 0);
    pthread_join(tid, NULL); /* until the server has ended all four, or the guard */
    int ended = atomic_load(&t->server_ended), fewest = t->min_trickled;
    free(t);
    int status = http(AF_INET, fw_http_port(h), GET("/metrics"), resp, sizeof resp);
    fw_http_stop(h);
    fw_metrics_free(m);

    assert_int_equal(ended, 4);
    assert_true(fewest >= 2); /* they were trickling, not idle, when closed */
    assert_int_equal(status, 200);
    assert_non_null(strstr(body_of(resp),
                           "\nfraudwatch_http_connections_dropped_total{reason=\"deadline\"} 4\n"));
}

/* ---- logging ------------------------------------------------------------------ */

static FILE *capture(void)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    fw_log_set_stream(f);
    return f;
}

/* Stops capturing; returns what was written (malloc'd). */
static char *captured(FILE *f)
{
    fw_log_set_stream(NULL);
    long n = ftell(f);
    assert_true(n >= 0);
    char *s = malloc((size_t)n + 1);
    rewind(f);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static bool matches(const char *re, const char *s)
{
    regex_t r;
    assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

#define TS "ts=[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\\.[0-9]{3}Z"

static void test_log_levels(void **state)
{
    (void)state;
    enum fw_log_level l = FW_LOG_ERROR;
    assert_int_equal(fw_log_parse_level("debug", &l), 0);
    assert_int_equal(l, FW_LOG_DEBUG);
    assert_int_equal(fw_log_parse_level("INFO", &l), 0);
    assert_int_equal(l, FW_LOG_INFO);
    assert_int_equal(fw_log_parse_level("warn", &l), 0);
    assert_int_equal(l, FW_LOG_WARN);
    assert_int_equal(fw_log_parse_level("warning", &l), 0);
    assert_int_equal(l, FW_LOG_WARN);
    assert_int_equal(fw_log_parse_level("error", &l), 0);
    assert_int_equal(l, FW_LOG_ERROR);
    assert_int_equal(fw_log_parse_level("verbose", &l), -1);
    assert_int_equal(fw_log_parse_level("", &l), -1);
    assert_int_equal(fw_log_parse_level(NULL, &l), -1);
    assert_int_equal(l, FW_LOG_ERROR); /* untouched on failure */

    FILE *f = capture();
    fw_log_set_level(FW_LOG_WARN);
    assert_false(fw_log_enabled(FW_LOG_DEBUG));
    assert_false(fw_log_enabled(FW_LOG_INFO));
    assert_true(fw_log_enabled(FW_LOG_WARN));
    assert_true(fw_log_enabled(FW_LOG_ERROR));
    fw_log(FW_LOG_DEBUG, "t", "hidden debug", NULL);
    fw_log(FW_LOG_INFO, "t", "hidden info", "n=%d", 1);
    fw_log(FW_LOG_WARN, "t", "shown warn", NULL);
    fw_log(FW_LOG_ERROR, "t", "shown error", NULL);
    fw_log_set_level(FW_LOG_DEBUG);
    fw_log(FW_LOG_DEBUG, "t", "shown debug", NULL);
    fw_log_set_level(FW_LOG_INFO);
    char *out = captured(f);
    assert_null(strstr(out, "hidden"));
    assert_true(matches("^" TS " level=warn module=t msg=\"shown warn\"\n"
                        TS " level=error module=t msg=\"shown error\"\n"
                        TS " level=debug module=t msg=\"shown debug\"\n$", out));
    free(out);
}

static void test_log_format(void **state)
{
    (void)state;
    FILE *f = capture();
    errno = EAGAIN;
    fw_log(FW_LOG_INFO, "kafka", "assigned partitions", "count=%d topic=%s", 4, "events");
    assert_int_equal(errno, EAGAIN); /* logging keeps errno */
    char *out = captured(f);
    assert_true(matches("^" TS " level=info module=kafka msg=\"assigned partitions\" "
                        "count=4 topic=events\n$", out));
    free(out);

    /* msg quoted and escaped; control bytes in pairs escaped; odd modules quoted */
    f = capture();
    fw_log(FW_LOG_ERROR, "rules", "file \"a.json\":\nline 3\\4\ttab\x01", NULL);
    fw_log(FW_LOG_WARN, "my module", NULL, "error=\"%s\"", "two\nlines");
    fw_log(FW_LOG_INFO, NULL, "no module", NULL);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-zero-length"
    fw_log(FW_LOG_INFO, "x", "empty pairs", "");
#pragma GCC diagnostic pop
    out = captured(f);
    static const char *const want[] = {
        " level=error module=rules msg=\"file \\\"a.json\\\":\\nline 3\\\\4\\ttab\\u0001\"",
        " level=warn module=\"my module\" msg=\"\" error=\"two\\nlines\"",
        " level=info module=- msg=\"no module\"",
        " level=info module=x msg=\"empty pairs\"",
    };
    size_t n = 0;
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save), n++) {
        assert_true(n < 4);
        assert_true(matches("^" TS " ", line));
        assert_string_equal(strstr(line, " level="), want[n]);
    }
    assert_int_equal(n, 4);
    free(out);

    /* a long record is written whole, as one line */
    size_t big = 10000;
    char *msg = malloc(big + 1);
    memset(msg, 'm', big);
    msg[big] = '\0';
    f = capture();
    fw_log(FW_LOG_INFO, "big", msg, "pad=%0*d", 3000, 7);
    out = captured(f);
    assert_non_null(strstr(out, msg));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1); /* one line */
    assert_true(matches("msg=\"m{10000}\" pad=0{2999}7\n$", out));
    free(out);
    free(msg);
}

enum { LOG_THREADS = 4, LOG_LINES = 500 };

static void *log_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    char msg[300];
    memset(msg, 'a' + id, sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    for (int i = 0; i < LOG_LINES; i++) {
        if (fw_log_enabled(FW_LOG_INFO))
            fw_log(FW_LOG_INFO, "worker", msg, "id=%d i=%d", id, i);
        fw_log(FW_LOG_DEBUG, "worker", "filtered", NULL);
    }
    return NULL;
}

static void test_log_threads(void **state)
{
    (void)state;
    FILE *f = capture();
    pthread_t t[LOG_THREADS];
    for (int i = 0; i < LOG_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, log_worker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < LOG_THREADS; i++)
        pthread_join(t[i], NULL);
    char *out = captured(f);
    int lines = 0;
    regex_t r;
    assert_int_equal(regcomp(&r, "^" TS " level=info module=worker msg=\"(a+|b+|c+|d+)\" "
                                 "id=[0-3] i=[0-9]+$", REG_EXTENDED | REG_NOSUB), 0);
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        assert_int_equal(regexec(&r, line, 0, NULL, 0), 0);
        assert_int_equal(strlen(strstr(line, "msg=\"")), 5 + 299 + 1 + strlen(strstr(line, " id=")));
        lines++;
    }
    regfree(&r);
    assert_int_equal(lines, LOG_THREADS * LOG_LINES);
    free(out);
}

static size_t count_lines(const char *text, const char *part)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, part)); p += strlen(part))
        n++;
    return n;
}

/* A client can make libmicrohttpd log a message per connection (here: a
 * request whose headers do not fit, answered 431 after the message); at most
 * 20 a minute reach the log, then one line with the count of the rest
 * (written at the latest when the server stops). */
static void test_http_log_bounded(void **state)
{
    (void)state;
    enum { REQUESTS = 30 };
    char err[512] = "";
    fw_metrics *m = fw_metrics_new();
    FILE *f = capture();
    fw_http *h = fw_http_start("127.0.0.1:0", m, NULL, NULL, err, sizeof err);
    if (!h && strstr(err, "no libmicrohttpd")) {
        free(captured(f));
        fw_metrics_free(m);
        skip();
        return;
    }
    assert_non_null(h);
    size_t biglen = 40000;
    char *big = malloc(biglen + 64);
    int n = snprintf(big, 64, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ");
    memset(big + n, 'a', biglen);
    strcpy(big + n + biglen, "\r\n\r\n");
    int answered = 0;
    char resp[4096];
    for (int i = 0; i < REQUESTS; i++) /* the 431 comes after the message */
        answered += http(AF_INET, fw_http_port(h), big, resp, sizeof resp) == 431;
    free(big);
    fw_http_stop(h);
    fw_metrics_free(m);
    char *out = captured(f);

    assert_int_equal(answered, REQUESTS);
    size_t all = count_lines(out, " module=http msg="),
           summary = count_lines(out, " module=http msg=\"messages from the HTTP server "
                                      "suppressed\" count=10\n");
    if (all - summary != 20 || summary != 1)
        print_message("log:\n%s", out);
    assert_int_equal(all - summary, 20);
    assert_int_equal(summary, 1);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_exact),
        cmocka_unit_test(test_escape_label),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_http_refuses),
        cmocka_unit_test(test_http_request_deadline),
        cmocka_unit_test(test_http_slow_clients),
        cmocka_unit_test(test_http_slow_clients_same_address),
        cmocka_unit_test(test_http_burst_spares_the_unread),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_log_format),
        cmocka_unit_test(test_log_threads),
        cmocka_unit_test(test_http_log_bounded),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}

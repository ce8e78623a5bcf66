/* test_engine.c — the engine through a real pipeline: evidence, alert ids,
 * thread-count independence, hostile input, malformed events.  The exact
 * window and sequence semantics are pinned by the hand-derived cases in
 * tests/cases/; these tests cover what those cannot see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fraudwatch/event.h"
#include "harness.h"
#include "state.h"

#define T0 1700000000000LL

static char err[8192];

static void run(const char *rules, const char *lists, const char *events,
                uint32_t threads, fwt_result *res)
{
    if (fwt_run(rules, lists, events, threads, res, err, sizeof err) != 0)
        fail_msg("run failed: %s", err);
}

static void test_threshold_evidence(void **state)
{
    (void)state;
    const char *rules = "[{\"id\":\"T1\",\"name\":\"burst\",\"severity\":\"high\","
                        "\"event\":\"call\",\"threshold\":{\"group_by\":\"caller\","
                        "\"window_s\":60,\"count\":{\">=\":3}}},"
                        "{\"id\":\"T2\",\"event\":\"transfer\",\"threshold\":{"
                        "\"group_by\":\"to\",\"window_s\":60,\"sum\":{\"field\":\"amount\","
                        "\">\":100.5}}}]";
    char *ev = fwt_events(
        "{\"event_id\":\"a\",\"type\":\"call\",\"ts\":%lld,\"caller\":\"111\"}\n"
        "{\"event_id\":\"b\",\"type\":\"call\",\"ts\":%lld,\"caller\":\"111\"}\n"
        "{\"event_id\":\"c\",\"type\":\"call\",\"ts\":%lld,\"caller\":\"111\"}\n"
        "{\"event_id\":\"d\",\"type\":\"transfer\",\"ts\":%lld,\"to\":\"X\",\"amount\":100.25}\n"
        "{\"event_id\":\"e\",\"type\":\"transfer\",\"ts\":%lld,\"to\":\"X\",\"amount\":0.26}\n",
        T0, T0 + 1000, T0 + 2000, T0, T0 + 1);
    fwt_result res;
    run(rules, NULL, ev, 1, &res);
    assert_int_equal(res.nalerts, 2);
    const cJSON *a = fwt_find(&res, "T1", "c");
    assert_non_null(a);
    assert_string_equal(fwt_str(a, "rule_name"), "burst");
    assert_string_equal(fwt_str(a, "severity"), "high");
    assert_string_equal(fwt_str(a, "subject"), "111");
    assert_true(fwt_num(a, "event_ts") == (double)(T0 + 2000));
    assert_true(fwt_num(a, "evidence.count") == 3);
    assert_true(fwt_num(a, "evidence.window_s") == 60);
    assert_true(fwt_num(a, "ruleset_version") == 1);
    double now = (double)time(NULL) * 1000;
    assert_true(fwt_num(a, "detected_ts") > now - 600000 &&
                fwt_num(a, "detected_ts") < now + 600000);
    const cJSON *s = fwt_find(&res, "T2", "e");
    assert_non_null(s);
    /* exact decimal sum: 100.25 + 0.26 = 100.51 */
    assert_true(fwt_num(s, "evidence.sum") == 100.51);
    assert_string_equal(fwt_str(s, "severity"), "medium");
    fwt_result_free(&res);
    free(ev);
}

static void test_plain_evidence_and_subject(void **state)
{
    (void)state;
    const char *rules =
        "[{\"id\":\"P1\",\"event\":\"sms\",\"subject\":\"recipient\",\"where\":["
        "{\"field\":\"text\",\"regex\":\"安全账户\"},"
        "{\"field\":\"sender\",\"in_list\":\"fraud\"},"
        "{\"any\":[{\"field\":\"n\",\"op\":\">\",\"value\":5},{\"field\":\"k\",\"op\":\"==\",\"value\":\"x\"}]}]}]";
    const char *ev =
        "{\"event_id\":\"m1\",\"type\":\"sms\",\"ts\":1,\"sender\":\"170\",\"recipient\":\"138\","
        "\"text\":\"请把钱转到安全账户，谢谢\",\"n\":1,\"k\":\"x\"}\n"
        "{\"event_id\":\"m2\",\"type\":\"sms\",\"ts\":2,\"sender\":\"171\",\"recipient\":\"138\","
        "\"text\":\"安全账户\",\"n\":9}\n";
    fwt_result res;
    run(rules, "fraud=170", ev, 1, &res);
    assert_int_equal(res.nalerts, 1);
    const cJSON *a = fwt_find(&res, "P1", "m1");
    assert_non_null(a);
    assert_string_equal(fwt_str(a, "subject"), "138");
    const cJSON *matched = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(a, "evidence"), "matched");
    assert_int_equal(cJSON_GetArraySize(matched), 3);
    const cJSON *m0 = cJSON_GetArrayItem(matched, 0);
    assert_string_equal(fwt_str(m0, "field"), "text");
    assert_string_equal(fwt_str(m0, "match"), "安全账户");
    assert_string_equal(fwt_str(cJSON_GetArrayItem(matched, 1), "in_list"), "fraud");
    assert_string_equal(fwt_str(cJSON_GetArrayItem(matched, 1), "value"), "170");
    /* the alternative of "any" that held is the one shown */
    const cJSON *any = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(matched, 2), "any");
    assert_string_equal(fwt_str(cJSON_GetArrayItem(any, 0), "field"), "k");
    fwt_result_free(&res);
}

/* Exactly these alerts, each a (rule id, event id). */
static void expect_alerts(const char *rules, const char *events, uint32_t threads,
                          const char *const want[][2], size_t n)
{
    fwt_result res;
    run(rules, NULL, events, threads, &res);
    assert_int_equal(res.nalerts, n);
    for (size_t i = 0; i < n; i++)
        if (!fwt_find(&res, want[i][0], want[i][1]))
            fail_msg("no %s alert for %s", want[i][0], want[i][1]);
    fwt_result_free(&res);
}

/* Conditions read each field once per event (match.c caches the look-ups
 * by path): a value must never carry over to the next event, which the
 * batch's arena may parse at the very same address. */
static void test_field_lookups_per_event(void **state)
{
    (void)state;
    const char *rules =
        "[{\"id\":\"F1\",\"event\":\"e\",\"subject\":\"s\",\"where\":["
        "{\"field\":\"a\",\"op\":\"==\",\"value\":\"x\"}]},"
        "{\"id\":\"F2\",\"event\":\"e\",\"subject\":\"s\",\"where\":["
        "{\"field\":\"a\",\"op\":\"==\",\"value\":\"x\"},{\"field\":\"b.c\",\"op\":\">\",\"value\":5}]},"
        "{\"id\":\"F3\",\"event\":\"e\",\"subject\":\"s\",\"where\":[{\"any\":["
        "{\"field\":\"b.c\",\"op\":\">\",\"value\":5},{\"field\":\"a\",\"op\":\"==\",\"value\":\"y\"}]}]},"
        "{\"id\":\"F4\",\"event\":\"e\",\"subject\":\"s\",\"where\":["
        "{\"field\":\"a\",\"regex\":\"^y\"}]}]";
    const char *ev =
        "{\"event_id\":\"e1\",\"type\":\"e\",\"ts\":1,\"s\":\"1\",\"a\":\"x\",\"b\":{\"c\":9}}\n"
        "{\"event_id\":\"e2\",\"type\":\"e\",\"ts\":2,\"s\":\"1\",\"b\":{\"c\":1}}\n"
        "{\"event_id\":\"e3\",\"type\":\"e\",\"ts\":3,\"s\":\"1\",\"a\":\"y\"}\n"
        "{\"event_id\":\"e4\",\"type\":\"e\",\"ts\":4,\"s\":\"1\",\"b\":{\"c\":7}}\n"
        "{\"event_id\":\"e5\",\"type\":\"e\",\"ts\":5,\"s\":\"1\",\"a\":\"x\",\"b\":\"c\"}\n";
    static const char *const want[][2] = {
        { "F1", "e1" }, { "F2", "e1" }, { "F3", "e1" }, { "F3", "e3" },
        { "F4", "e3" }, { "F3", "e4" }, { "F1", "e5" },
    };
    for (uint32_t threads = 1; threads <= 2; threads++)
        expect_alerts(rules, ev, threads, want, sizeof want / sizeof want[0]);
}

/* A search is run once per event for every rule with the same field,
 * pattern and flags (match.c): a different field or flag is another. */
static void test_shared_searches_per_event(void **state)
{
    (void)state;
    const char *rules =
        "[{\"id\":\"G1\",\"event\":\"e\",\"subject\":\"s\",\"where\":[{\"field\":\"f\",\"regex\":\"^a\"}]},"
        "{\"id\":\"G2\",\"event\":\"e\",\"subject\":\"s\",\"where\":[{\"field\":\"f\",\"regex\":\"^a\",\"flags\":\"i\"}]},"
        "{\"id\":\"G3\",\"event\":\"e\",\"subject\":\"s\",\"where\":[{\"field\":\"f\",\"not_regex\":\"^a\"}]},"
        "{\"id\":\"G4\",\"event\":\"e\",\"subject\":\"s\",\"where\":[{\"field\":\"g\",\"regex\":\"^a\"}]}]";
    const char *ev =
        "{\"event_id\":\"x1\",\"type\":\"e\",\"ts\":1,\"s\":\"1\",\"f\":\"abc\",\"g\":\"zzz\"}\n"
        "{\"event_id\":\"x2\",\"type\":\"e\",\"ts\":2,\"s\":\"1\",\"f\":\"Abc\",\"g\":\"abc\"}\n"
        "{\"event_id\":\"x3\",\"type\":\"e\",\"ts\":3,\"s\":\"1\",\"g\":\"a\"}\n";
    static const char *const want[][2] = {
        { "G1", "x1" }, { "G2", "x1" }, { "G2", "x2" }, { "G3", "x2" },
        { "G4", "x2" }, { "G3", "x3" }, { "G4", "x3" },
    };
    expect_alerts(rules, ev, 1, want, sizeof want / sizeof want[0]);
}

static void test_sequence_evidence(void **state)
{
    (void)state;
    const char *rules =
        "[{\"id\":\"S1\",\"sequence\":[{\"event\":\"call\",\"key\":\"callee\"},"
        "{\"event\":\"sms\",\"key\":\"to\"},{\"event\":\"transfer\",\"key\":\"phone\"}],"
        "\"within_s\":600}]";
    char *ev = fwt_events(
        "{\"event_id\":\"c1\",\"type\":\"call\",\"ts\":%lld,\"callee\":\"138\"}\n"
        "{\"event_id\":\"s1\",\"type\":\"sms\",\"ts\":%lld,\"to\":\"138\"}\n"
        "{\"event_id\":\"t1\",\"type\":\"transfer\",\"ts\":%lld,\"phone\":\"138\"}\n",
        T0, T0 + 1000, T0 + 2000);
    fwt_result res;
    run(rules, NULL, ev, 2, &res);
    assert_int_equal(res.nalerts, 1);
    const cJSON *a = fwt_find(&res, "S1", "t1");
    assert_non_null(a);
    assert_string_equal(fwt_str(a, "severity"), "medium");
    const cJSON *evd = cJSON_GetObjectItemCaseSensitive(a, "evidence");
    assert_true(fwt_num(evd, "within_s") == 600);
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(evd, "steps");
    assert_int_equal(cJSON_GetArraySize(steps), 3);
    assert_string_equal(fwt_str(cJSON_GetArrayItem(steps, 0), "event_id"), "c1");
    assert_string_equal(fwt_str(cJSON_GetArrayItem(steps, 1), "event_id"), "s1");
    assert_true(fwt_num(cJSON_GetArrayItem(steps, 1), "ts") == (double)(T0 + 1000));
    assert_string_equal(fwt_str(cJSON_GetArrayItem(steps, 2), "event_id"), "t1");
    fwt_result_free(&res);
    free(ev);
}

static void test_alert_id(void **state)
{
    (void)state;
    /* Deterministic in (rule_id, subject, event_id), independent of the
     * rule's other members and of the event's time. */
    const char *r1 = "[{\"id\":\"X\",\"event\":\"*\",\"subject\":\"s\"}]";
    const char *r2 = "[{\"id\":\"X\",\"name\":\"other\",\"severity\":\"low\",\"event\":\"e\",\"subject\":\"s\"}]";
    fwt_result a, b;
    run(r1, NULL, "{\"event_id\":\"id1\",\"type\":\"e\",\"ts\":1,\"s\":\"q\"}\n"
                  "{\"event_id\":\"id2\",\"type\":\"e\",\"ts\":1,\"s\":\"q\"}\n", 1, &a);
    run(r2, NULL, "{\"event_id\":\"id1\",\"type\":\"e\",\"ts\":99,\"s\":\"q\"}\n", 1, &b);
    const char *id1 = fwt_str(a.alerts[0], "alert_id");
    assert_int_equal(strlen(id1), 32);
    assert_string_equal(id1, fwt_str(b.alerts[0], "alert_id"));
    assert_string_not_equal(id1, fwt_str(a.alerts[1], "alert_id"));
    /* ("ab","c") and ("a","bc") must not collide by concatenation */
    fwt_result c;
    run("[{\"id\":\"X\",\"event\":\"*\",\"subject\":\"s\"}]", NULL,
        "{\"event_id\":\"c\",\"type\":\"e\",\"ts\":1,\"s\":\"ab\"}\n"
        "{\"event_id\":\"bc\",\"type\":\"e\",\"ts\":1,\"s\":\"a\"}\n", 1, &c);
    assert_string_not_equal(fwt_str(c.alerts[0], "alert_id"),
                            fwt_str(c.alerts[1], "alert_id"));
    fwt_result_free(&a);
    fwt_result_free(&b);
    fwt_result_free(&c);
}

/* A deterministic pseudo-random stream over few keys, late events included,
 * through rules of every kind: the alert lists for 1, 2, 3 and 5 threads
 * must be identical, member for member (detected_ts aside). */
static char *random_events(int n, unsigned seed)
{
    size_t cap = (size_t)n * 200, len = 0;
    char *s = malloc(cap);
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    long long ts = T0;
    for (int i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        ts += (long long)(x % 5000);
        long long t = (x >> 20) % 10 == 0 ? ts - (long long)((x >> 30) % 60000) : ts;
        const char *types[] = { "call", "sms", "transfer" };
        len += (size_t)snprintf(s + len, cap - len,
            "{\"event_id\":\"e%d\",\"type\":\"%s\",\"ts\":%lld,\"a\":\"k%u\",\"b\":%u,"
            "\"v\":%u.5,\"t\":\"%s\"}\n",
            i, types[(x >> 8) % 3], t, (unsigned)((x >> 12) % 7), (unsigned)((x >> 16) % 5),
            (unsigned)((x >> 24) % 100), (x >> 40) % 4 ? "hello" : "安全账户 now");
        if (i % 97 == 0)
            len += (size_t)snprintf(s + len, cap - len, "{broken\n");
    }
    return s;
}

static void test_threads_identical(void **state)
{
    (void)state;
    const char *rules =
        "[{\"id\":\"C\",\"event\":\"*\",\"threshold\":{\"group_by\":\"a\",\"window_s\":30,\"count\":{\">=\":4}},\"suppress_s\":5},"
        "{\"id\":\"S\",\"event\":\"transfer\",\"threshold\":{\"group_by\":[\"a\",\"b\"],\"window_s\":60,\"sum\":{\"field\":\"v\",\">=\":120}},\"suppress_s\":0},"
        "{\"id\":\"D\",\"event\":\"call\",\"threshold\":{\"group_by\":\"b\",\"window_s\":40,\"distinct\":{\"field\":\"a\",\">=\":4}},\"suppress_s\":1},"
        "{\"id\":\"P\",\"event\":\"sms\",\"where\":[{\"field\":\"t\",\"regex\":\"安全\"}],\"subject\":\"a\",\"suppress_s\":20},"
        "{\"id\":\"Q\",\"sequence\":[{\"event\":\"call\",\"key\":\"a\"},{\"event\":\"sms\",\"key\":\"a\"},{\"event\":\"transfer\",\"key\":\"a\"}],\"within_s\":30,\"suppress_s\":0}]";
    char *ev = random_events(3000, 7);
    fwt_result base;
    run(rules, NULL, ev, 1, &base);
    assert_true(base.nalerts > 50);      /* the input exercises every rule */
    assert_int_equal(base.malformed, 31);
    const char *ids[] = { "C", "S", "D", "P", "Q" };
    for (int i = 0; i < 5; i++)
        assert_true(fwt_count(&base, ids[i], NULL, NULL) > 0);
    uint32_t counts[] = { 2, 3, 5 };
    for (int k = 0; k < 3; k++) {
        fwt_result r;
        run(rules, NULL, ev, counts[k], &r);
        assert_int_equal(r.nalerts, base.nalerts);
        for (size_t i = 0; i < r.nalerts; i++) {
            cJSON_DeleteItemFromObject(r.alerts[i], "detected_ts");
            cJSON_DeleteItemFromObject(base.alerts[i], "detected_ts");
            if (!cJSON_Compare(r.alerts[i], base.alerts[i], 1)) {
                char *x = cJSON_PrintUnformatted(r.alerts[i]);
                char *y = cJSON_PrintUnformatted(base.alerts[i]);
                fail_msg("threads=%u alert %zu differs:\n%s\n%s", counts[k], i, x, y);
            }
        }
        fwt_result_free(&r);
    }
    fwt_result_free(&base);
    free(ev);
}

/* A checkpoint taken mid-stream and loaded into a pipeline with another
 * thread count continues exactly: same alerts as one uninterrupted run. */
static void test_checkpoint_resume(void **state)
{
    (void)state;
    const char *rules =
        "[{\"id\":\"C\",\"event\":\"*\",\"threshold\":{\"group_by\":\"a\",\"window_s\":30,\"count\":{\">=\":4}},\"suppress_s\":5},"
        "{\"id\":\"S\",\"event\":\"transfer\",\"threshold\":{\"group_by\":[\"a\",\"b\"],\"window_s\":60,\"sum\":{\"field\":\"v\",\">=\":120}},\"suppress_s\":0},"
        "{\"id\":\"D\",\"event\":\"call\",\"threshold\":{\"group_by\":\"b\",\"window_s\":40,\"distinct\":{\"field\":\"a\",\">=\":4}},\"suppress_s\":1},"
        "{\"id\":\"P\",\"event\":\"sms\",\"where\":[{\"field\":\"t\",\"regex\":\"安全\"}],\"subject\":\"a\",\"suppress_s\":20},"
        "{\"id\":\"Q\",\"sequence\":[{\"event\":\"call\",\"key\":\"a\"},{\"event\":\"sms\",\"key\":\"a\"},{\"event\":\"transfer\",\"key\":\"a\"}],\"within_s\":30,\"suppress_s\":0}]";
    char *ev = random_events(2000, 11);
    fwt_result base;
    run(rules, NULL, ev, 2, &base);
    assert_true(base.nalerts > 30);
    uint32_t splits[] = { 500, 1234, 1900 };
    uint32_t t1[] = { 1, 2, 4 }, t2[] = { 3, 1, 2 };
    for (int k = 0; k < 3; k++) {
        fwt_result r;
        if (fwt_run_checkpointed(rules, ev, splits[k], t1[k], t2[k], &r, err, sizeof err) != 0)
            fail_msg("checkpointed run failed: %s", err);
        assert_int_equal(r.nalerts, base.nalerts);
        for (size_t i = 0; i < r.nalerts; i++)
            assert_string_equal(fwt_str(r.alerts[i], "alert_id"),
                                fwt_str(base.alerts[i], "alert_id"));
        fwt_result_free(&r);
    }
    fwt_result_free(&base);
    free(ev);
}

static void test_malformed_reasons(void **state)
{
    (void)state;
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *ev = fwt_events(
        "not json\n"
        "[1,2]\n"
        "{\"type\":\"a\",\"ts\":1}\n"
        "{\"event_id\":\"\",\"type\":\"a\",\"ts\":1}\n"
        "{\"event_id\":\"x\",\"ts\":1}\n"
        "{\"event_id\":\"x\",\"type\":\"a\"}\n"
        "{\"event_id\":\"x\",\"type\":\"a\",\"ts\":1.5}\n"
        "{\"event_id\":\"x\",\"type\":\"a\",\"ts\":\"1\"}\n"
        "{\"event_id\":\"x\",\"type\":\"a\",\"ts\":-1}\n"
        "{\"event_id\":\"x\",\"type\":\"a\",\"ts\":1e300}\n"
        "{\"event_id\":\"x\",\"type\":\"a\",\"ts\":1} trailing\n"
        "{\"event_id\":\"x\",\"type\":\"a\",\"ts\":1,\"t\":\"\xff\xfe\"}\n"
        "{\"event_id\":\"x\",\"type\":\"a\",\"ts\":1,\"t\":\"%s\"}\n"
        "{\"event_id\":\"ok\",\"type\":\"a\",\"ts\":1e3}\n",
        big);
    fwt_result res;
    run("[{\"id\":\"A\",\"event\":\"a\"}]", NULL, ev, 2, &res);
    const char *want[] = {
        "not valid JSON", "not a JSON object", "missing event_id",
        "event_id is not a non-empty string", "missing type", "missing ts",
        "ts is not an integer", "ts is not an integer", "ts out of range",
        "ts out of range", "trailing data after the JSON value",
        "not valid UTF-8", "larger than the maximum event size",
    };
    assert_int_equal(res.malformed, 13);
    for (uint32_t i = 0; i < 13; i++) {
        assert_int_equal(res.bad_lines[i], i + 1);
        if (!strstr(res.bad_reasons[i], want[i]))
            fail_msg("line %u: \"%s\" is not \"%s\"", i + 1, res.bad_reasons[i], want[i]);
    }
    /* 1e3 is an integer; the one good event alerts */
    assert_int_equal(res.nalerts, 1);
    assert_int_equal(fwt_count(&res, "A", "ok", "ok"), 1);
    fwt_result_free(&res);
    free(ev);
}

static void test_catastrophic_regex_bounded(void **state)
{
    (void)state;
    /* (a+)+$ against 3000 'a's and a 'b': exponential without limits. */
    size_t n = 3000;
    char *text = malloc(n + 2);
    memset(text, 'a', n);
    text[n] = 'b';
    text[n + 1] = '\0';
    char *ev = fwt_events(
        "{\"event_id\":\"h\",\"type\":\"sms\",\"ts\":1,\"text\":\"%s\"}\n"
        "{\"event_id\":\"g\",\"type\":\"sms\",\"ts\":2,\"text\":\"aaa\"}\n", text);
    fwt_result res;
    run("[{\"id\":\"H\",\"event\":\"sms\",\"where\":[{\"field\":\"text\",\"regex\":\"^(a+)+$\"}]}]",
        NULL, ev, 1, &res);
    /* the hostile event is "no match" with a counted fault; the stream goes on */
    assert_int_equal(res.faults, 1);
    assert_int_equal(res.nalerts, 1);
    assert_int_equal(fwt_count(&res, "H", NULL, "g"), 1);
    fwt_result_free(&res);
    /* Two rules with that search: it runs once (match.c), and its fault
     * counts for each rule, as two searches would. */
    run("[{\"id\":\"H\",\"event\":\"sms\",\"where\":[{\"field\":\"text\",\"regex\":\"^(a+)+$\"}]},"
        "{\"id\":\"H2\",\"event\":\"sms\",\"where\":[{\"field\":\"text\",\"regex\":\"^(a+)+$\"}]}]",
        NULL, ev, 1, &res);
    assert_int_equal(res.faults, 2);
    assert_int_equal(res.nalerts, 2);
    assert_int_equal(fwt_count(&res, "H2", NULL, "g"), 1);
    fwt_result_free(&res);
    free(ev);
    free(text);
}

static void test_invalid_utf8_in_pattern_subject(void **state)
{
    (void)state;
    /* Escaped control characters and odd JSON stay safe in regex matching
     * and in the evidence (which must remain valid JSON). */
    const char *ev = "{\"event_id\":\"q\\\"1\",\"type\":\"sms\",\"ts\":1,\"text\":\"line1\\nline2 \\u0001 \\\"x\\\"\"}\n";
    fwt_result res;
    run("[{\"id\":\"U\",\"event\":\"sms\",\"where\":[{\"field\":\"text\",\"regex\":\"line2\"}]}]",
        NULL, ev, 1, &res);
    assert_int_equal(res.nalerts, 1);     /* parsed back by the harness: valid JSON */
    assert_string_equal(fwt_str(res.alerts[0], "event_id"), "q\"1");
    fwt_result_free(&res);
}

static void test_state_expiry_keeps_semantics(void **state)
{
    (void)state;
    /* Thousands of one-off keys over a long time: idle keys are dropped by
     * the sweep, and a key that comes back after its window starts afresh,
     * exactly as the SPEC's window says. */
    size_t cap = 4000 * 120, len = 0;
    char *ev = malloc(cap);
    long long ts = T0;
    for (int i = 0; i < 3000; i++, ts += 60000)
        len += (size_t)snprintf(ev + len, cap - len,
                                "{\"event_id\":\"x%d\",\"type\":\"c\",\"ts\":%lld,\"k\":\"k%d\"}\n",
                                i, ts, i % 1000 == 0 ? 0 : i);
    fwt_result res;
    /* k0 appears at i = 0, 1000, 2000: 1000 minutes apart, window 10 min */
    run("[{\"id\":\"W\",\"event\":\"c\",\"threshold\":{\"group_by\":\"k\",\"window_s\":600,\"count\":{\">=\":2}}}]",
        NULL, ev, 2, &res);
    assert_int_equal(res.nalerts, 0);
    fwt_result_free(&res);
    free(ev);
}

/* The events through a pipeline of 2 workers, `batch` events a batch and a
 * sweep pass every `pass` events, for one threshold rule (a 10-minute
 * window on "k"): the keys left at the end, and how many the sweep looked
 * at (*visits, if not NULL). */
/* With `left` set, the driver is freed as a process about to exit frees it
 * (fw_driver_free_at_exit) and *left is how many keys that left. */
static size_t keys_after(const char *events, uint32_t batch, uint32_t pass, uint64_t *visits,
                         size_t *left)
{
    const char *rules =
        "[{\"id\":\"W\",\"event\":\"c\",\"threshold\":{\"group_by\":\"k\","
        "\"window_s\":600,\"count\":{\">=\":2}}}]";
    fw_rulefile f = { "test.json", rules, strlen(rules) };
    fw_ruleset *rs;
    assert_int_equal(fw_ruleset_load_files(&f, 1, 1, &rs, err, sizeof err), 0);
    fw_pipeline_opts o = { .workers = 2, .batch_events = batch, .max_event_bytes = 4096,
                           .gc_pass_events = pass };
    fw_mem_source *src = fw_mem_source_new();
    fw_mem_source_add_lines(src, events, 0, UINT64_MAX);
    fwt_result res;
    memset(&res, 0, sizeof res);
    fwt_collector c = { .res = &res };
    fw_driver *d = fwt_driver(rs, &o, src, &c, err, sizeof err);
    assert_non_null(d);
    fwt_drive(d, &res);
    size_t keys = fw_pipeline_keys(fw_driver_pipeline(d));
    if (visits)
        *visits = fw_pipeline_sweep_visits(fw_driver_pipeline(d));
    assert_int_equal(res.nalerts, 0);
    if (left) {
        size_t before = fw_state_left_keys();
        fw_driver_free_at_exit(d);
        *left = fw_state_left_keys() - before;
    } else {
        fw_driver_free(d);
    }
    fw_mem_source_free(src);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
    return keys;
}

/* n one-off keys ("k<first>" on), `gap_ms` apart from ts0, appended. */
static char *one_off_keys(char *ev, size_t *len, int first, int n, long long ts0, long long gap_ms)
{
    ev = realloc(ev, *len + (size_t)n * 100 + 1);
    assert_non_null(ev);
    for (int i = 0; i < n; i++)
        *len += (size_t)sprintf(ev + *len,
                                "{\"event_id\":\"x%d\",\"type\":\"c\",\"ts\":%lld,\"k\":\"k%d\"}\n",
                                first + i, ts0 + gap_ms * i, first + i);
    return ev;
}

/* The sweep of idle keys runs in slices, each batch its events' share of a
 * pass: over a long stream of one-off keys it still drops them, so only
 * the keys of the last stretch of the stream are live at the end, and how
 * the events are batched does not change how far the sweep gets.  Keys
 * left after N one-off keys, a minute apart, with `batch` events a batch
 * and a pass every `pass` events. */
static size_t keys_left_after_sweep(uint32_t batch, uint32_t pass)
{
    enum { N = 20000 };
    size_t len = 0;
    char *ev = one_off_keys(NULL, &len, 0, N, T0, 60000);  /* a minute apart */
    size_t keys = keys_after(ev, batch, pass, NULL, NULL);
    free(ev);
    return keys;
}

static void test_idle_keys_swept_in_slices(void **state)
{
    (void)state;
    /* The stream clock is the median of the last 1024 event times (512
     * minutes behind here) and a whole pass takes 768 events (768
     * minutes): a few thousand keys are left (2,798 with batches of 3 when
     * written), not 20,000. */
    size_t small = keys_left_after_sweep(3, 768);
    assert_true(small > 0);
    assert_true(small < 20000 / 4);
    /* Batches of 300 sweep as far: 100 times the events a batch, 100
     * times the share (a slice per batch would leave ~15,000 keys). */
    size_t large = keys_left_after_sweep(300, 768);
    assert_true(large > 0);
    assert_true(large < 20000 / 4);
    /* The default pass, 262,144 events, is far longer than this stream:
     * the sweep has not come round, nothing is dropped yet. */
    assert_true(keys_left_after_sweep(300, 0) > 20000 / 2);
}

/* A sweep that finds nothing idle backs off, and comes back when keys go
 * idle.  First 40,000 one-off keys a millisecond apart: 40 s of event
 * time, inside every key's 10-minute window, so nothing is idle.  A pass
 * every 768 events would look at about 40,000² / (2 × 768) ≈ 1.04M keys;
 * passes that double while they find nothing (up to 8 times 768) look at
 * a fraction of that.  Then 20,000 more keys a minute apart: keys go idle
 * (all the first 40,000 at once, then one a minute), the passes shorten
 * again, and the keys left are few, as in test_idle_keys_swept_in_slices. */
static void test_idle_sweep_backs_off(void **state)
{
    (void)state;
    enum { QUIET = 40000, LATER = 20000 };
    size_t len = 0;
    char *ev = one_off_keys(NULL, &len, 0, QUIET, T0, 1);
    uint64_t visits;
    size_t keys = keys_after(ev, 300, 768, &visits, NULL);
    assert_int_equal(keys, QUIET);                 /* nothing was idle */
    uint64_t fixed = (uint64_t)QUIET * QUIET / (2 * 768);
    if (!(visits > 0 && visits < fixed / 3))
        fail_msg("the sweep looked at %llu keys (a fixed pass: ~%llu)",
                 (unsigned long long)visits, (unsigned long long)fixed);
    ev = one_off_keys(ev, &len, QUIET, LATER, T0 + QUIET + 60000, 60000);
    keys = keys_after(ev, 300, 768, NULL, NULL);
    if (!(keys > 0 && keys < LATER / 4))
        fail_msg("%zu keys left of %d", keys, QUIET + LATER);
    free(ev);
}

/* A process about to exit (replay, compare) leaves its keys' state to the
 * exit instead of freeing it item by item: every key is still there,
 * reachable (the ASan build's leak check at this test's exit sees it), and
 * counted by fw_state_left_keys. */
static void test_state_left_at_exit(void **state)
{
    (void)state;
    enum { N = 3000 };
    size_t len = 0, left = 0;
    char *ev = one_off_keys(NULL, &len, 0, N, T0, 1);
    assert_int_equal(keys_after(ev, 64, 0, NULL, &left), N);
    assert_int_equal(left, N);
    free(ev);
}

/* ---- absurd timestamps (issue 10, item 1) ------------------------------ */

struct stream {
    char *text;
    size_t len, cap;
};

static void put(struct stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct stream *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (s->len + (size_t)n + 1 > s->cap) {
        s->cap = (s->len + (size_t)n + 1) * 2;
        s->text = realloc(s->text, s->cap);
        assert_non_null(s->text);
    }
    va_start(ap, fmt);
    vsnprintf(s->text + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

static uint64_t rnd(uint64_t *x) { return fwt_xorshift(x); }

/* A stream over several days in bursts (so idle keys really are swept),
 * with a few late events, and — when `poison` — `npoison` events of their
 * own keys stamped far ahead, far behind or at 0 inserted at random places.
 * Rules: a caller's burst of calls (threshold), a payer's sum (threshold),
 * a call from a listed number then the callee's transfer (sequence). */
static char *absurd_stream(uint64_t seed, bool poison, int npoison)
{
    struct stream s = { 0 };
    uint64_t x = seed * 2654435761u + 1, px = seed * 40503u + 7;
    long long ts = T0;
    int at[8];
    for (int k = 0; k < npoison; k++)
        at[k] = (int)(rnd(&px) % 12000);
    for (int i = 0; i < 12000; i++) {
        if (i % 2500 == 2499)
            ts += 30LL * 3600 * 1000;                  /* a quiet day and more */
        ts += (long long)(rnd(&x) % 4000);
        long long t = ts;
        if (rnd(&x) % 50 == 0)
            t -= (long long)(rnd(&x) % (3600 * 1000)); /* late, within the hour */
        int a = (int)(rnd(&x) % 40), b = (int)(rnd(&x) % 40);
        switch (rnd(&x) % 3) {
        case 0:
            put(&s, "{\"event_id\":\"e%d\",\"type\":\"call\",\"ts\":%lld,"
                    "\"caller\":\"c%d\",\"callee\":\"v%d\"}\n", i, t, a, b);
            break;
        case 1:
            put(&s, "{\"event_id\":\"e%d\",\"type\":\"transfer\",\"ts\":%lld,"
                    "\"payer_phone\":\"v%d\",\"amount\":%d}\n", i, t, b,
                (int)(rnd(&x) % 9000));
            break;
        default:
            put(&s, "{\"event_id\":\"e%d\",\"type\":\"sms\",\"ts\":%lld,"
                    "\"sender\":\"c%d\"}\n", i, t, a);
            break;
        }
        for (int k = 0; poison && k < npoison; k++) {
            if (at[k] != i)
                continue;
            static const long long when[] = { 253402300799999LL, 0, 1,
                                               36LL * 3600 * 1000 /* ahead */ };
            long long pt = when[rnd(&px) % 4];
            if (pt == 36LL * 3600 * 1000)
                pt += ts;
            static const char *const types[] = { "call", "transfer", "heartbeat" };
            put(&s, "{\"event_id\":\"poison%d\",\"type\":\"%s\",\"ts\":%lld,"
                    "\"caller\":\"c%d\",\"callee\":\"pv%d\",\"payer_phone\":\"pv%d\","
                    "\"amount\":9999}\n",
                k, types[rnd(&px) % 3], pt, k == 0 ? 0 : 1000 + k, k, k);
        }
    }
    return s.text;
}

static bool poisoned_alert(const cJSON *a)
{
    const char *ev = fwt_str(a, "event_id"), *sub = fwt_str(a, "subject");
    return strncmp(ev, "poison", 6) == 0 || strncmp(sub, "pv", 2) == 0 ||
           strcmp(sub, "c0") == 0;
}

/* SPEC §2: a key's state depends only on that key's events.  Random streams
 * with a few absurd timestamps injected (far future, 1.5 days ahead, 0, 1;
 * of a type the rules use or not) give, for every other key, exactly the
 * alerts of the clean stream — with 1 and 3 threads. */
static void test_absurd_times_touch_only_their_key(void **state)
{
    (void)state;
    const char *rules =
        "[{\"id\":\"B\",\"event\":\"call\",\"threshold\":{\"group_by\":\"caller\","
        "\"window_s\":600,\"count\":{\">=\":4}}},"
        "{\"id\":\"S\",\"event\":\"transfer\",\"threshold\":{\"group_by\":\"payer_phone\","
        "\"window_s\":1800,\"sum\":{\"field\":\"amount\",\">=\":20000}}},"
        "{\"id\":\"Q\",\"sequence\":["
        "{\"event\":\"call\",\"where\":[{\"field\":\"caller\",\"in_list\":\"fraud\"}],"
        "\"key\":\"callee\"},"
        "{\"event\":\"transfer\",\"where\":[{\"field\":\"amount\",\"op\":\">=\","
        "\"value\":5000}],\"key\":\"payer_phone\"}],\"within_s\":1800}]";
    const char *lists = "fraud=c1,c2,c3,c4,c5";
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int npoison = 1 + (int)(seed % 5);
        char *clean = absurd_stream(seed, false, npoison);
        char *dirty = absurd_stream(seed, true, npoison);
        for (uint32_t threads = 1; threads <= 3; threads += 2) {
            fwt_result a, b;
            run(rules, lists, clean, threads, &a);
            run(rules, lists, dirty, threads, &b);
            assert_true(a.nalerts > 100);   /* the stream exercises the rules */
            size_t j = 0;
            for (size_t i = 0; i < b.nalerts; i++) {
                if (poisoned_alert(b.alerts[i]))
                    continue;
                while (j < a.nalerts && poisoned_alert(a.alerts[j]))
                    j++;
                if (j >= a.nalerts)
                    fail_msg("seed %llu: extra alert %s on %s", (unsigned long long)seed,
                             fwt_str(b.alerts[i], "rule_id"), fwt_str(b.alerts[i], "event_id"));
                if (strcmp(fwt_str(a.alerts[j], "alert_id"), fwt_str(b.alerts[i], "alert_id")))
                    fail_msg("seed %llu, %u threads: alert %s on %s, expected %s on %s",
                             (unsigned long long)seed, threads,
                             fwt_str(b.alerts[i], "rule_id"), fwt_str(b.alerts[i], "event_id"),
                             fwt_str(a.alerts[j], "rule_id"), fwt_str(a.alerts[j], "event_id"));
                j++;
            }
            while (j < a.nalerts && poisoned_alert(a.alerts[j]))
                j++;
            if (j != a.nalerts)
                fail_msg("seed %llu, %u threads: alert %s on %s missing",
                         (unsigned long long)seed, threads, fwt_str(a.alerts[j], "rule_id"),
                         fwt_str(a.alerts[j], "event_id"));
            fwt_result_free(&a);
            fwt_result_free(&b);
        }
        free(clean);
        free(dirty);
    }
}

/* The key state budget (issue 10, item 10): a flood of one-off keys
 * evicts the keys whose state ends first — counted — instead of growing
 * without bound, and a key that keeps coming back keeps its window. */
static void test_key_budget_evicts_coldest(void **state)
{
    (void)state;
    size_t cap = 8000 * 110, len = 0;
    char *ev = malloc(cap);
    long long ts = T0;
    int hot = 0;
    for (int i = 0; i < 8000; i++, ts += 100) {
        if (i % 10 == 0)   /* the hot caller: every 10th call, 4 in a window fire */
            len += (size_t)snprintf(ev + len, cap - len,
                                    "{\"event_id\":\"h%d\",\"type\":\"call\",\"ts\":%lld,"
                                    "\"caller\":\"hot\"}\n", hot++, ts);
        else
            len += (size_t)snprintf(ev + len, cap - len,
                                    "{\"event_id\":\"x%d\",\"type\":\"call\",\"ts\":%lld,"
                                    "\"caller\":\"c%d\"}\n", i, ts, i);
    }
    const char *rules = "[{\"id\":\"W\",\"event\":\"call\",\"threshold\":{\"group_by\":"
                        "\"caller\",\"window_s\":600,\"count\":{\">=\":4}},\"suppress_s\":0}]";
    fwt_result all, budget;
    run(rules, NULL, ev, 2, &all);
    fwt_max_keys = 1000;
    run(rules, NULL, ev, 2, &budget);
    fwt_max_keys = 0;
    assert_int_equal(all.evictions, 0);
    assert_true(budget.evictions >= 8000 - 800 - 1000);
    /* The hot key fired on every one of its events from the 4th on, with
     * and without the budget: its window was never evicted. */
    assert_int_equal(fwt_count(&all, "W", "hot", NULL), 800 - 3);
    assert_int_equal(fwt_count(&budget, "W", "hot", NULL), 800 - 3);
    fwt_result_free(&all);
    fwt_result_free(&budget);
    free(ev);
}

/* ---- windows against a brute-force oracle -------------------------------- */

struct oev {
    long long ts;
    int key, val;
    bool counted;
};

/* SPEC §2 "Threshold", computed the slow way: for each event, the key's
 * high-water mark, the counted events in (m - W, t], the aggregate. */
static bool oracle_fires(struct oev *ev, int i, int agg, long long w_ms, double limit)
{
    long long m = LLONG_MIN;
    for (int j = 0; j < i; j++)
        if (ev[j].counted && ev[j].key == ev[i].key && ev[j].ts > m)
            m = ev[j].ts;
    long long hw = m > ev[i].ts ? m : ev[i].ts;
    if (ev[i].ts <= hw - w_ms)
        return ev[i].counted = false;
    ev[i].counted = true;
    double count = 0, sum = 0, distinct = 0;
    int seen[64] = { 0 };
    for (int j = 0; j <= i; j++) {
        if (!ev[j].counted || ev[j].key != ev[i].key || ev[j].ts <= hw - w_ms ||
            ev[j].ts > ev[i].ts)
            continue;
        count++;
        sum += ev[j].val;
        if (!seen[ev[j].val]++)
            distinct++;
    }
    double a = agg == 0 ? count : agg == 1 ? sum : distinct;
    return a >= limit;
}

/* count, sum and distinct windows — with late events, expiry, and distinct
 * sets that outgrow the small list — fire on exactly the events a
 * brute-force reading of the SPEC says, on 1 and 3 threads. */
static void test_windows_match_oracle(void **state)
{
    (void)state;
    static const char *const aggs[] = {
        "\"count\":{\">=\":5}",
        "\"sum\":{\"field\":\"v\",\">=\":300}",
        "\"distinct\":{\"field\":\"v\",\">=\":12}",
    };
    static const double limits[] = { 5, 300, 12 };
    enum { N = 3000 };
    struct oev *ev = calloc(N, sizeof *ev);
    char *text = malloc(N * 100);
    for (int agg = 0; agg < 3; agg++) {
        uint64_t x = 12345 + (uint64_t)agg;
        long long ts = T0;
        size_t len = 0;
        for (int i = 0; i < N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            ts += (long long)(x % 20000);
            long long t = ts;
            if (x % 7 == 0)
                t -= (long long)((x >> 8) % 900000);       /* late, up to 15 min */
            ev[i] = (struct oev){ t, (int)((x >> 20) % 5), (int)((x >> 30) % 40), false };
            len += (size_t)snprintf(text + len, 100,
                                    "{\"event_id\":\"e%d\",\"type\":\"c\",\"ts\":%lld,"
                                    "\"k\":\"%d\",\"v\":%d}\n", i, t, ev[i].key, ev[i].val);
        }
        char rules[512];
        snprintf(rules, sizeof rules,
                 "[{\"id\":\"W\",\"event\":\"c\",\"suppress_s\":0,\"threshold\":{"
                 "\"group_by\":\"k\",\"window_s\":600,%s}}]", aggs[agg]);
        int want = 0;
        bool fires[N];
        for (int i = 0; i < N; i++)
            want += fires[i] = oracle_fires(ev, i, agg, 600000, limits[agg]);
        assert_true(want > 50 && want < N - 50);   /* the stream says something */
        for (uint32_t threads = 1; threads <= 3; threads += 2) {
            fwt_result res;
            run(rules, NULL, text, threads, &res);
            bool got[N] = { false };
            for (size_t a = 0; a < res.nalerts; a++)
                got[atoi(fwt_str(res.alerts[a], "event_id") + 1)] = true;
            for (int i = 0; i < N; i++)
                if (got[i] != fires[i])
                    fail_msg("agg %d, %u threads: event e%d %s", agg, threads, i,
                             fires[i] ? "should fire" : "should not fire");
            assert_int_equal(res.nalerts, want);
            fwt_result_free(&res);
        }
    }
    free(ev);
    free(text);
}

int main(void)
{
    fw_event_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_evidence),
        cmocka_unit_test(test_plain_evidence_and_subject),
        cmocka_unit_test(test_field_lookups_per_event),
        cmocka_unit_test(test_shared_searches_per_event),
        cmocka_unit_test(test_sequence_evidence),
        cmocka_unit_test(test_alert_id),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_checkpoint_resume),
        cmocka_unit_test(test_malformed_reasons),
        cmocka_unit_test(test_catastrophic_regex_bounded),
        cmocka_unit_test(test_invalid_utf8_in_pattern_subject),
        cmocka_unit_test(test_state_expiry_keeps_semantics),
        cmocka_unit_test(test_idle_keys_swept_in_slices),
        cmocka_unit_test(test_idle_sweep_backs_off),
        cmocka_unit_test(test_state_left_at_exit),
        cmocka_unit_test(test_absurd_times_touch_only_their_key),
        cmocka_unit_test(test_key_budget_evicts_coldest),
        cmocka_unit_test(test_windows_match_oracle),
    };
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}

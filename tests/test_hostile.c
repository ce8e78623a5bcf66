/* test_hostile.c — hostile input, in-process (docs/limits.md).
 *
 * Events: deeply nested JSON, huge strings, huge and NaN-like numbers,
 * duplicate keys, invalid UTF-8, NUL bytes, megabyte messages, ts out of
 * range.  Rule sets: catastrophic backtracking, huge alternations, thousands
 * of rules, millions of watchlist entries, deeply nested "any", oversized
 * files, floods of members and errors.  Rules directories: a sparse 3 GiB
 * file, a FIFO, a link to /dev/zero, a directory under a rule-file name, too
 * many files, too many bytes together.
 *
 * Each case asserts what happened in the engine's own terms — the malformed
 * counter and its reason, the regex-fault counter, the refusal message of a
 * bad rule set — and that a good event after the hostile one still alerts
 * (the stream goes on).  Work is bounded by the engine's limits, not by a
 * clock: a test asserts the limit that cut the work short (a counted fault,
 * a refused set), and the meson timeout is the hang guard.  Timing belongs
 * in bench/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fraudwatch/event.h"
#include "fraudwatch/pipeline.h"
#include "fraudwatch/ruleset.h"
#include "hostile_util.h"

static char err[64 * 1024];

static fw_ruleset *load(const char *rules)
{
    fw_ruleset *rs = fwh_load(rules, strlen(rules), NULL, NULL, 0, err, sizeof err);
    if (!rs)
        fail_msg("rules refused: %s", err);
    return rs;
}

/* The set must be refused with a message containing `needle`. */
static void refused(const char *rules, size_t len, const char *list_name,
                    const char *list, size_t list_len, const char *needle)
{
    fw_ruleset *rs = fwh_load(rules, len, list_name, list, list_len, err, sizeof err);
    if (rs) {
        fw_ruleset_unref(rs);
        fail_msg("accepted a rule set that should be refused (%s)", needle);
    }
    if (!strstr(err, needle))
        fail_msg("refusal message lacks \"%s\":\n%.2000s%s", needle, err,
                 strlen(err) > 2000 ? "..." : "");
}

/* A rule that fires on every event of type "ok"; hostile cases append
 * events of that type to show that the stream goes on. */
#define OK_RULE "{\"id\":\"OK\",\"event\":\"ok\"}"
#define OK_EVENT(id) "{\"event_id\":\"" id "\",\"type\":\"ok\",\"ts\":1700000000000}"

static void run(fw_ruleset *rs, const fwh_msg *m, size_t n, fwt_result *res)
{
    fwh_run(rs, NULL, m, n, res);
    fwh_check_alerts(res);
}

static void expect_reason(const fwt_result *res, uint32_t line, const char *want)
{
    const char *r = fwh_reason(res, line);
    if (!r)
        fail_msg("line %u was not counted as malformed (want \"%s\")", line, want);
    if (!strstr(r, want))
        fail_msg("line %u: reason \"%s\", want \"%s\"", line, r, want);
}

/* ---- events --------------------------------------------------------------- */

static void test_deep_nesting(void **state)
{
    (void)state;
    /* 900 nested objects read by a 900-part field path; cJSON refuses more
     * than 1000 levels, so 1001 and 100 000 levels are malformed JSON. */
    char *path = fwh_repeat("a", ".a", 899, "");
    char *rules = NULL;
    if (asprintf(&rules, "[" OK_RULE ",{\"id\":\"DEEP\",\"event\":\"deep\",\"where\":["
                         "{\"field\":\"%s\",\"op\":\"==\",\"value\":7}]}]", path) < 0)
        fail();
    fw_ruleset *rs = load(rules);
    char *deep = fwh_repeat("{\"event_id\":\"d\",\"type\":\"deep\",\"ts\":1,\"a\":",
                            "{\"a\":", 899, "7");
    char *deep2 = fwh_repeat(deep, "}", 900, "");
    char *over = fwh_repeat("{\"event_id\":\"o\",\"type\":\"deep\",\"ts\":1,\"x\":", "[", 1001, "");
    char *over2 = fwh_repeat(over, "]", 1001, "}");
    char *huge = fwh_repeat("", "[", 100000, "");
    char *huge2 = fwh_repeat(huge, "]", 100000, "");
    fwh_msg m[] = { fwh_str(deep2), fwh_str(over2), fwh_str(huge2), fwh_str(OK_EVENT("after")) };
    fwt_result res;
    run(rs, m, 4, &res);
    assert_int_equal(res.malformed, 2);
    expect_reason(&res, 2, "not valid JSON");
    expect_reason(&res, 3, "not valid JSON");
    assert_int_equal(fwt_count(&res, "DEEP", NULL, "d"), 1);
    assert_int_equal(fwt_count(&res, "OK", NULL, "after"), 1);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
    free(path), free(rules), free(deep), free(deep2), free(over), free(over2);
    free(huge), free(huge2);
}

static void test_huge_strings(void **state)
{
    (void)state;
    /* A 900 KiB text matched at its end, a 100 KiB event_id and subject, a
     * 200 KiB string compared for equality: the alert carries the ids
     * whole, the evidence cuts values and matches at 256 bytes. */
    fw_ruleset *rs = load("[" OK_RULE ","
        "{\"id\":\"TAIL\",\"event\":\"sms\",\"where\":[{\"field\":\"text\",\"regex\":\"x{10}END$\"}]},"
        "{\"id\":\"EQ\",\"event\":\"eq\",\"subject\":\"s\",\"where\":[{\"field\":\"s\",\"op\":\"!=\",\"value\":\"q\"}]}]");
    char *text = fwh_repeat("{\"event_id\":\"t\",\"type\":\"sms\",\"ts\":1,\"text\":\"",
                            "x", 900 * 1024, "END\"}");
    char *id = fwh_repeat("{\"event_id\":\"", "i", 100 * 1024, "\",\"type\":\"sms\",\"ts\":1,\"text\":\"xxxxxxxxxxEND\"}");
    char *eq = fwh_repeat("{\"event_id\":\"e\",\"type\":\"eq\",\"ts\":1,\"s\":\"", "安", 200 * 1024 / 3, "\"}");
    fwh_msg m[] = { fwh_str(text), fwh_str(id), fwh_str(eq), fwh_str(OK_EVENT("after")) };
    fwt_result res;
    run(rs, m, 4, &res);
    assert_int_equal(res.malformed, 0);
    assert_int_equal(res.nalerts, 4);
    const cJSON *a = fwt_find(&res, "TAIL", "t");
    assert_non_null(a);
    const cJSON *matched = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(a, "evidence"), "matched");
    assert_string_equal(fwt_str(cJSON_GetArrayItem(matched, 0), "match"), "xxxxxxxxxxEND");
    /* the long event id is kept whole */
    assert_int_equal(fwt_count(&res, "TAIL", NULL, NULL), 2);
    const char *longid = fwt_str(res.alerts[1], "event_id");
    assert_non_null(longid);
    assert_int_equal(strlen(longid), 100 * 1024);
    /* a 200 KiB value: whole as the subject, cut to 256 bytes (on a UTF-8
     * boundary) in the evidence */
    const cJSON *e = fwt_find(&res, "EQ", "e");
    assert_non_null(e);
    assert_int_equal(strlen(fwt_str(e, "subject")), 200 * 1024 / 3 * 3);
    const char *shown = fwt_str(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(e, "evidence"), "matched"), 0), "value");
    assert_non_null(shown);
    assert_true(strlen(shown) <= 256 && strlen(shown) >= 250);
    assert_true(fw_utf8_valid(shown, strlen(shown)));
    assert_int_equal(fwt_count(&res, "OK", NULL, "after"), 1);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
    free(text), free(id), free(eq);
}

static void test_huge_numbers(void **state)
{
    (void)state;
    /* JSON numbers are doubles: 1e999 reads as infinity, 1e-400 as 0, big
     * integers lose precision.  A sum ignores values beyond ±9e12; keys and
     * distinct values are the number's shortest text; an alert stays valid
     * JSON whatever the number (JSON has no Infinity). */
    fw_ruleset *rs = load("[" OK_RULE ","
        "{\"id\":\"BIG\",\"event\":\"n\",\"subject\":\"v\",\"where\":[{\"field\":\"v\",\"op\":\">\",\"value\":1e300}]},"
        "{\"id\":\"NEG\",\"event\":\"n\",\"where\":[{\"field\":\"v\",\"op\":\"<\",\"value\":-1e300}]},"
        "{\"id\":\"SUM\",\"event\":\"s\",\"threshold\":{\"group_by\":\"k\",\"window_s\":60,"
        "\"sum\":{\"field\":\"v\",\">=\":9e12}},\"suppress_s\":0},"
        "{\"id\":\"KEY\",\"event\":\"k\",\"subject\":\"v\"}]");
    fwh_msg m[] = {
        fwh_str("{\"event_id\":\"b1\",\"type\":\"n\",\"ts\":1,\"v\":1e308}"),
        fwh_str("{\"event_id\":\"inf\",\"type\":\"n\",\"ts\":1,\"v\":1e999}"),
        fwh_str("{\"event_id\":\"ninf\",\"type\":\"n\",\"ts\":1,\"v\":-1e999}"),
        fwh_str("{\"event_id\":\"s1\",\"type\":\"s\",\"ts\":1,\"k\":\"a\",\"v\":1e999}"),
        fwh_str("{\"event_id\":\"s2\",\"type\":\"s\",\"ts\":2,\"k\":\"a\",\"v\":9.000000000001e12}"),
        fwh_str("{\"event_id\":\"s3\",\"type\":\"s\",\"ts\":3,\"k\":\"a\",\"v\":9e12}"),
        fwh_str("{\"event_id\":\"k1\",\"type\":\"k\",\"ts\":1,\"v\":9007199254740993}"),
        fwh_str("{\"event_id\":\"k2\",\"type\":\"k\",\"ts\":1,\"v\":1e21}"),
        fwh_str("{\"event_id\":\"k3\",\"type\":\"k\",\"ts\":1,\"v\":1e-400}"),
        fwh_str("{\"event_id\":\"k4\",\"type\":\"k\",\"ts\":1,\"v\":-0.0}"),
        fwh_str("{\"event_id\":\"k5\",\"type\":\"k\",\"ts\":1,\"v\":123456789012345678901234567890}"),
        fwh_str(OK_EVENT("after")),
    };
    fwt_result res;
    fwh_run(rs, NULL, m, sizeof m / sizeof m[0], &res);
    assert_int_equal(res.malformed, 0);
    assert_int_equal(fwt_count(&res, "BIG", "1e+308", "b1"), 1);
    assert_int_equal(fwt_count(&res, "KEY", "9007199254740992", "k1"), 1);
    assert_int_equal(fwt_count(&res, "KEY", "1e+21", "k2"), 1);
    assert_int_equal(fwt_count(&res, "KEY", "0", "k3"), 1);
    assert_int_equal(fwt_count(&res, "KEY", "0", "k4"), 1);
    assert_int_equal(fwt_count(&res, "KEY", "1.2345678901234568e+29", "k5"), 1);
    /* infinity is not summed; 9e12 + a hair is beyond the bound, 9e12 is in */
    assert_int_equal(fwt_count(&res, "SUM", NULL, NULL), 1);
    assert_int_equal(fwt_count(&res, "SUM", "a", "s3"), 1);
    assert_int_equal(fwt_count(&res, "OK", NULL, "after"), 1);
    /* 1e999 is infinity, which is > 1e300: the rule fires — and its alert
     * (whose evidence shows the value) must still be valid JSON. */
    fwh_check_alerts(&res);
    assert_int_equal(fwt_count(&res, "BIG", "Infinity", "inf"), 1);
    assert_int_equal(fwt_count(&res, "NEG", NULL, "ninf"), 1);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
}

static void test_nan_like_numbers(void **state)
{
    (void)state;
    /* JSON has no NaN or Infinity literals: such events are not JSON.  As
     * strings they are just strings, never numbers. */
    fw_ruleset *rs = load("[" OK_RULE ",{\"id\":\"NUM\",\"event\":\"n\",\"where\":["
                          "{\"field\":\"v\",\"op\":\"!=\",\"value\":0}]}]");
    fwh_msg m[] = {
        fwh_str("{\"event_id\":\"a\",\"type\":\"n\",\"ts\":1,\"v\":NaN}"),
        fwh_str("{\"event_id\":\"b\",\"type\":\"n\",\"ts\":1,\"v\":Infinity}"),
        fwh_str("{\"event_id\":\"c\",\"type\":\"n\",\"ts\":1,\"v\":-Infinity}"),
        fwh_str("{\"event_id\":\"d\",\"type\":\"n\",\"ts\":NaN}"),
        fwh_str("{\"event_id\":\"e\",\"type\":\"n\",\"ts\":1,\"v\":nan}"),
        fwh_str("{\"event_id\":\"f\",\"type\":\"n\",\"ts\":1,\"v\":0x10}"),
        fwh_str("{\"event_id\":\"g\",\"type\":\"n\",\"ts\":1,\"v\":\"NaN\"}"),
        fwh_str("{\"event_id\":\"h\",\"type\":\"n\",\"ts\":1,\"v\":1}"),
        fwh_str(OK_EVENT("after")),
    };
    fwt_result res;
    run(rs, m, sizeof m / sizeof m[0], &res);
    assert_int_equal(res.malformed, 6);
    for (uint32_t i = 1; i <= 6; i++)
        expect_reason(&res, i, "not valid JSON");
    assert_int_equal(fwt_count(&res, "NUM", NULL, NULL), 1);
    assert_int_equal(fwt_count(&res, "NUM", NULL, "h"), 1);
    assert_int_equal(fwt_count(&res, "OK", NULL, "after"), 1);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
}

static void test_ts_out_of_range(void **state)
{
    (void)state;
    fw_ruleset *rs = load("[{\"id\":\"ANY\",\"event\":\"*\"}]");
    fwh_msg m[] = {
        fwh_str("{\"event_id\":\"a\",\"type\":\"t\",\"ts\":-1}"),
        fwh_str("{\"event_id\":\"b\",\"type\":\"t\",\"ts\":253402300800000}"),
        fwh_str("{\"event_id\":\"c\",\"type\":\"t\",\"ts\":1e300}"),
        fwh_str("{\"event_id\":\"d\",\"type\":\"t\",\"ts\":1e999}"),
        fwh_str("{\"event_id\":\"e\",\"type\":\"t\",\"ts\":-1e999}"),
        fwh_str("{\"event_id\":\"f\",\"type\":\"t\",\"ts\":9223372036854775808}"),
        fwh_str("{\"event_id\":\"g\",\"type\":\"t\",\"ts\":1.5}"),
        fwh_str("{\"event_id\":\"h\",\"type\":\"t\",\"ts\":\"1700000000000\"}"),
        fwh_str("{\"event_id\":\"i\",\"type\":\"t\",\"ts\":null}"),
        /* the bounds themselves are in range; 1.7e12 is an integer */
        fwh_str("{\"event_id\":\"lo\",\"type\":\"t\",\"ts\":0}"),
        fwh_str("{\"event_id\":\"hi\",\"type\":\"t\",\"ts\":253402300799999}"),
        fwh_str("{\"event_id\":\"exp\",\"type\":\"t\",\"ts\":1.7e12}"),
        fwh_str("{\"event_id\":\"negzero\",\"type\":\"t\",\"ts\":-0}"),
    };
    fwt_result res;
    run(rs, m, sizeof m / sizeof m[0], &res);
    assert_int_equal(res.malformed, 9);
    for (uint32_t i = 1; i <= 6; i++)
        expect_reason(&res, i, "ts out of range");
    expect_reason(&res, 7, "ts is not an integer");
    expect_reason(&res, 8, "ts is not an integer");
    expect_reason(&res, 9, "ts is not an integer");
    assert_int_equal(res.nalerts, 4);
    assert_true(fwt_num(fwt_find(&res, "ANY", "hi"), "event_ts") == 253402300799999.0);
    assert_true(fwt_num(fwt_find(&res, "ANY", "exp"), "event_ts") == 1.7e12);
    assert_true(fwt_num(fwt_find(&res, "ANY", "negzero"), "event_ts") == 0);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    /* cJSON keeps every member; lookups find the first.  So does the
     * engine, for the required fields and for rule fields alike. */
    fw_ruleset *rs = load("[{\"id\":\"DUP\",\"event\":\"t\",\"subject\":\"k\",\"where\":["
                          "{\"field\":\"v\",\"op\":\"==\",\"value\":1}]}]");
    fwh_msg m[] = {
        fwh_str("{\"event_id\":\"first\",\"event_id\":\"second\",\"type\":\"t\",\"type\":\"u\","
                "\"ts\":5,\"ts\":\"x\",\"v\":1,\"v\":2,\"k\":\"k1\",\"k\":\"k2\"}"),
        fwh_str("{\"event_id\":\"x\",\"type\":\"t\",\"ts\":1,\"v\":2,\"v\":1}"),
    };
    fwt_result res;
    run(rs, m, 2, &res);
    assert_int_equal(res.malformed, 0);
    assert_int_equal(res.nalerts, 1);
    assert_int_equal(fwt_count(&res, "DUP", "k1", "first"), 1);
    assert_true(fwt_num(res.alerts[0], "event_ts") == 5);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    fw_ruleset *rs = load("[{\"id\":\"ANY\",\"event\":\"*\"}]");
    static const char *const bad[] = {
        "\xff",                 /* never valid */
        "\xc0\x80",             /* overlong NUL */
        "\xe0\x80\xaf",         /* overlong '/' */
        "\xed\xa0\x80",         /* UTF-16 surrogate */
        "\xf4\x90\x80\x80",     /* beyond U+10FFFF */
        "\xe5\xae",             /* cut short */
        "\x80",                 /* stray continuation */
        "\xf8\x88\x80\x80\x80", /* 5-byte form */
    };
    const size_t nbad = sizeof bad / sizeof bad[0];
    fwh_msg m[16];
    char *texts[16];
    for (size_t i = 0; i < nbad; i++) {
        if (asprintf(&texts[i], "{\"event_id\":\"b%zu\",\"type\":\"t\",\"ts\":1,\"s\":\"%s\"}",
                     i, bad[i]) < 0)
            fail();
        m[i] = fwh_str(texts[i]);
    }
    /* escapes that decode to a lone surrogate are not JSON (cJSON) */
    m[nbad] = fwh_str("{\"event_id\":\"esc\",\"type\":\"t\",\"ts\":1,\"s\":\"\\ud800\"}");
    /* valid: a 4-byte character, raw and escaped */
    m[nbad + 1] = fwh_str("{\"event_id\":\"\xf0\x9f\x98\x80\",\"type\":\"t\",\"ts\":1}");
    m[nbad + 2] = fwh_str("{\"event_id\":\"\\ud83d\\ude00x\",\"type\":\"t\",\"ts\":1}");
    fwt_result res;
    run(rs, m, nbad + 3, &res);
    assert_int_equal(res.malformed, nbad + 1);
    for (uint32_t i = 1; i <= nbad; i++)
        expect_reason(&res, i, "not valid UTF-8");
    expect_reason(&res, (uint32_t)nbad + 1, "not valid JSON");
    assert_int_equal(res.nalerts, 2);
    assert_int_equal(fwt_count(&res, "ANY", NULL, "\xf0\x9f\x98\x80"), 1);
    assert_int_equal(fwt_count(&res, "ANY", NULL, "\xf0\x9f\x98\x80x"), 1);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
    for (size_t i = 0; i < nbad; i++)
        free(texts[i]);
}

static void test_nul_bytes(void **state)
{
    (void)state;
    /* A raw NUL byte is valid UTF-8.  Inside a string (raw, or escaped as
     * \u0000) it ends the string as the engine sees it; after the value it
     * is trailing data; before it, cJSON skips it like white space. */
    fw_ruleset *rs = load("[{\"id\":\"ANY\",\"event\":\"*\",\"subject\":\"s\"}]");
    static const char raw_in[] = "{\"event_id\":\"a\",\"type\":\"t\",\"ts\":1,\"s\":\"12\0" "34\"}";
    static const char esc_in[] = "{\"event_id\":\"b\",\"type\":\"t\",\"ts\":1,\"s\":\"56\\u0000" "78\"}";
    static const char after[] = "{\"event_id\":\"c\",\"type\":\"t\",\"ts\":1}\0";
    static const char before[] = "\0{\"event_id\":\"d\",\"type\":\"t\",\"ts\":1}";
    static const char only[] = "\0\0\0";
    static const char in_id[] = "{\"event_id\":\"\0\",\"type\":\"t\",\"ts\":1}";
    fwh_msg m[] = {
        { raw_in, sizeof raw_in - 1 }, { esc_in, sizeof esc_in - 1 },
        { after, sizeof after - 1 }, { before, sizeof before - 1 },
        { only, sizeof only - 1 }, { in_id, sizeof in_id - 1 },
        fwh_str("{\"event_id\":\"e\",\"type\":\"t\",\"ts\":1}"),
    };
    fwt_result res;
    run(rs, m, sizeof m / sizeof m[0], &res);
    assert_int_equal(res.malformed, 3);
    expect_reason(&res, 3, "trailing data");
    expect_reason(&res, 5, "not valid JSON");
    expect_reason(&res, 6, "event_id is not a non-empty string");
    assert_int_equal(fwt_count(&res, "ANY", "12", "a"), 1);
    assert_int_equal(fwt_count(&res, "ANY", "56", "b"), 1);
    assert_int_equal(fwt_count(&res, "ANY", "d", "d"), 1);
    assert_int_equal(fwt_count(&res, "ANY", "e", "e"), 1);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
}

static void test_megabyte_messages(void **state)
{
    (void)state;
    /* Default limit 1 MiB (FW_DEFAULT_MAX_EVENT_BYTES): a larger message is
     * malformed without being copied or parsed; 512 KiB and exactly 1 MiB
     * are events.  A 16 MiB message costs nothing but its counting. */
    fw_ruleset *rs = load("[{\"id\":\"BIG\",\"event\":\"big\",\"where\":["
                          "{\"field\":\"pad\",\"regex\":\"^x+$\"}]}]");
    size_t sizes[] = { 512 * 1024, FW_DEFAULT_MAX_EVENT_BYTES, FW_DEFAULT_MAX_EVENT_BYTES + 1,
                       2 * FW_DEFAULT_MAX_EVENT_BYTES, 16 * FW_DEFAULT_MAX_EVENT_BYTES };
    const char *ids[] = { "half", "max", "over", "two", "sixteen" };
    fwh_msg m[6];
    char *bufs[5];
    for (int i = 0; i < 5; i++) {
        char h[128];
        int hl = snprintf(h, sizeof h, "{\"event_id\":\"%s\",\"type\":\"big\",\"ts\":1,\"pad\":\"",
                          ids[i]);
        bufs[i] = malloc(sizes[i]);
        assert_non_null(bufs[i]);
        memcpy(bufs[i], h, (size_t)hl);
        memset(bufs[i] + hl, 'x', sizes[i] - (size_t)hl - 2);
        memcpy(bufs[i] + sizes[i] - 2, "\"}", 2);
        m[i] = (fwh_msg){ bufs[i], sizes[i] };
    }
    m[5] = fwh_str("{\"event_id\":\"small\",\"type\":\"big\",\"ts\":2,\"pad\":\"xx\"}");
    fwt_result res;
    run(rs, m, 6, &res);
    assert_int_equal(res.malformed, 3);
    expect_reason(&res, 3, "larger than the maximum event size");
    expect_reason(&res, 4, "larger than the maximum event size");
    expect_reason(&res, 5, "larger than the maximum event size");
    assert_int_equal(res.nalerts, 3);
    assert_int_equal(fwt_count(&res, "BIG", NULL, "half"), 1);
    assert_int_equal(fwt_count(&res, "BIG", NULL, "max"), 1);
    assert_int_equal(fwt_count(&res, "BIG", NULL, "small"), 1);
    fwt_result_free(&res);

    /* A lower limit (replay --max-event-bytes, limits.max_event_bytes). */
    fw_pipeline_opts o = { .workers = 1, .max_event_bytes = 64 };
    fwh_msg m2[] = { fwh_str("{\"event_id\":\"a\",\"type\":\"big\",\"ts\":1,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxx\"}"),
                     fwh_str("{\"event_id\":\"b\",\"type\":\"big\",\"ts\":1,\"pad\":\"x\"}") };
    assert_true(m2[0].n > 64 && m2[1].n <= 64);
    fwh_run(rs, &o, m2, 2, &res);
    assert_int_equal(res.malformed, 1);
    expect_reason(&res, 1, "larger than the maximum event size");
    assert_int_equal(fwt_count(&res, "BIG", NULL, "b"), 1);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
    for (int i = 0; i < 5; i++)
        free(bufs[i]);
}

/* ---- regexes ----------------------------------------------------------------- */

/* A regex rule H against n 'a's and `tail` (event h), then "aaa" (event g),
 * then an OK event.  h must cost one counted fault and no alert; g must
 * match when `g_matches` (else it may fault too: a pattern the limits never
 * let finish). */
static void catastrophic2(const char *pattern, size_t n, const char *tail, bool g_matches)
{
    char *rules = NULL;
    if (asprintf(&rules, "[" OK_RULE ",{\"id\":\"H\",\"event\":\"sms\",\"where\":["
                         "{\"field\":\"text\",\"regex\":\"%s\"}]}]", pattern) < 0)
        fail();
    fw_ruleset *rs = load(rules);
    char *ev = fwh_repeat("{\"event_id\":\"h\",\"type\":\"sms\",\"ts\":1,\"text\":\"", "a", n, tail);
    fwh_msg m[] = { fwh_str(ev),
                    fwh_str("{\"event_id\":\"g\",\"type\":\"sms\",\"ts\":2,\"text\":\"aaa\"}"),
                    fwh_str(OK_EVENT("after")) };
    fwt_result res;
    run(rs, m, 3, &res);
    /* the hostile event is "no match" plus one counted fault */
    if (res.faults != 1 + (uint64_t)(!g_matches && fwt_count(&res, "H", NULL, "g") == 0))
        fail_msg("/%.60s%s/ against %zu bytes: %llu regex faults counted, want 1 "
                 "(the match limit cuts the work short)", pattern,
                 strlen(pattern) > 60 ? "..." : "", n,
                 (unsigned long long)res.faults);
    assert_int_equal(fwt_count(&res, "H", NULL, "h"), 0);
    if (g_matches)
        assert_int_equal(fwt_count(&res, "H", NULL, "g"), 1);
    assert_int_equal(fwt_count(&res, "OK", NULL, "after"), 1);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
    free(rules);
    free(ev);
}

static void catastrophic(const char *pattern, size_t n, const char *tail)
{
    catastrophic2(pattern, n, tail, true);
}

static void test_catastrophic_backtracking(void **state)
{
    (void)state;
    /* (a+)+$ against 100k 'a's and a 'b': exponential without limits. */
    catastrophic("(a+)+$", 100000, "b\"}");
    /* The same without JIT (PCRE2's interpreter: valgrind, or a CPU or
     * pattern the JIT cannot take), which has its own depth limit. */
    setenv("FRAUDWATCH_NO_JIT", "1", 1);
    catastrophic("(a+)+$", 100000, "b\"}");
    unsetenv("FRAUDWATCH_NO_JIT");
}

static int jit_back_on(void **state)
{
    (void)state;
    unsetenv("FRAUDWATCH_NO_JIT");
    return 0;
}

static void test_regex_work_per_event(void **state)
{
    (void)state;
    /* Polynomial backtracking that stays under the match limit at every
     * start position: ~10^5 steps per position, 10^5 positions.  The match
     * limit counts per start position, so without a bound on the whole
     * search one 100 KB event costs ~10^10 steps (tens of seconds of a
     * worker).  The work for one event must be bounded: counted as a fault
     * like the exponential case. */
    catastrophic("a{0,60}a{0,60}a{0,60}$", 100000, "b\"}");
}

static void test_regex_heap_bounded(void **state)
{
    (void)state;
    /* 4000 capture groups: PCRE2's JIT gives up on the pattern ("no more
     * memory") and the interpreter runs it, keeping a frame with every
     * group's offsets (64 KB) per nesting level: 4000 levels to match even
     * "aaa", up to the depth limit (10000) on the hostile event — hundreds
     * of MB for one event unless the heap is limited (and then the pattern
     * can fault on every event, which is the rule author's to fix). */
    char *pat = fwh_repeat("", "()", 4000, "(a+)+$");
    long before = fwh_peak_rss_kib();
    catastrophic2(pat, 20000, "b\"}", false);
    long grown = fwh_peak_rss_kib() - before;
    if (grown > 128 * 1024)
        fail_msg("one event's regex grew the peak RSS by %ld MiB", grown / 1024);
    free(pat);
}

static void test_huge_alternation(void **state)
{
    (void)state;
    /* 3000 alternatives (~24 KB of pattern) compile, JIT, and match. */
    char *alt = malloc(3000 * 12 + 16);
    size_t len = 0;
    for (int i = 0; i < 3000; i++)
        len += (size_t)sprintf(alt + len, "%sw%05dz", i ? "|" : "", i * 7);
    char *rules = NULL;
    if (asprintf(&rules, "[" OK_RULE ",{\"id\":\"ALT\",\"event\":\"sms\",\"where\":["
                         "{\"field\":\"text\",\"regex\":\"(?:%s)\"}]}]", alt) < 0)
        fail();
    fw_ruleset *rs = load(rules);
    char *hit = fwh_repeat("{\"event_id\":\"hit\",\"type\":\"sms\",\"ts\":1,\"text\":\"",
                           "w0000 ", 2000, "w20993z\"}");
    fwh_msg m[] = { fwh_str(hit),
                    fwh_str("{\"event_id\":\"miss\",\"type\":\"sms\",\"ts\":1,\"text\":\"w00001z\"}"),
                    fwh_str(OK_EVENT("after")) };
    fwt_result res;
    run(rs, m, 3, &res);
    assert_int_equal(res.faults, 0);
    assert_int_equal(fwt_count(&res, "ALT", NULL, "hit"), 1);
    assert_int_equal(fwt_count(&res, "ALT", NULL, "miss"), 0);
    assert_int_equal(fwt_count(&res, "OK", NULL, "after"), 1);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
    free(rules);
    free(hit);

    /* Over the pattern length limit (64 KiB): refused by fraudwatch. */
    char *longpat = fwh_repeat("[{\"id\":\"L\",\"event\":\"e\",\"where\":[{\"field\":\"f\",\"regex\":\"",
                               "a|", 40000, "b\"}]}]");
    refused(longpat, strlen(longpat), NULL, NULL, 0, "more than the limit of 65536");
    free(longpat);

    /* Under the length limit but too large once compiled: refused with
     * PCRE2's own message, which the operator must be able to read. */
    char *big = fwh_repeat("[{\"id\":\"G\",\"event\":\"e\",\"where\":[{\"field\":\"f\",\"regex\":\"",
                           "(ab)", 15000, "\"}]}]");
    refused(big, strlen(big), NULL, NULL, 0, "regular expression is too large");
    free(big);
    free(alt);
}

/* ---- rule sets ------------------------------------------------------------ */

static void test_thousands_of_rules(void **state)
{
    (void)state;
    /* 5000 rules: 2500 regex rules on one type, 2500 on types of their own. */
    size_t cap = 5000 * 160, len = 0;
    char *rules = malloc(cap);
    rules[len++] = '[';
    for (int i = 0; i < 5000; i++)
        len += (size_t)snprintf(rules + len, cap - len,
            "%s{\"id\":\"R%04d\",\"event\":\"%s%d\",\"where\":[{\"field\":\"f\",\"regex\":\"^v%d$\"}]}",
            i ? "," : "", i, i % 2 ? "t" : "call", i % 2 ? i : 0, i);
    rules[len++] = ']';
    rules[len] = '\0';
    /* By default, 2500 regex searches per call event are refused as too
     * costly (issue 10, item 10), naming the type and the setting ... */
    refused(rules, len, NULL, NULL, 0,
            "too costly: an event of type \"call0\" would run 2500 regex searches "
            "(limit 1000");
    /* ... and an operator who raises the limit knowingly gets them. */
    fw_ruleset_set_max_regexes(5000);
    fw_ruleset *rs = load(rules);
    fw_ruleset_set_max_regexes(FW_DEFAULT_MAX_REGEX_PER_EVENT);
    assert_int_equal(fw_ruleset_rule_count(rs), 5000);
    char *desc = fwh_describe(rs);
    assert_non_null(strstr(desc, "5000 rules"));
    free(desc);
    fwh_msg m[] = {
        fwh_str("{\"event_id\":\"a\",\"type\":\"call0\",\"ts\":1,\"f\":\"v4998\"}"),
        fwh_str("{\"event_id\":\"b\",\"type\":\"t4999\",\"ts\":1,\"f\":\"v4999\"}"),
        fwh_str("{\"event_id\":\"c\",\"type\":\"t4999\",\"ts\":1,\"f\":\"v4998\"}"),
    };
    fwt_result res;
    run(rs, m, 3, &res);
    assert_int_equal(res.nalerts, 2);
    assert_int_equal(fwt_count(&res, "R4998", NULL, "a"), 1);
    assert_int_equal(fwt_count(&res, "R4999", NULL, "b"), 1);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);

    /* Duplicate ids across thousands of rules are found (hash, not scan). */
    for (size_t i = 0; i + 5 < len; i++)
        if (!memcmp(rules + i, "R4999", 5))
            memcpy(rules + i, "R0001", 5);
    refused(rules, len, NULL, NULL, 0, "rule R0001: id: duplicate rule id");
    free(rules);
}

static void test_millions_of_list_entries(void **state)
{
    (void)state;
    /* 2 000 000 phone numbers (24 MB) in one watchlist. */
    const size_t n = 2000000;
    char *list = malloc(n * 12 + 64);
    size_t len = (size_t)sprintf(list, "# two million numbers\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(list + len, "139%08zu\n", i * 3);
    const char *rules = "[{\"id\":\"IN\",\"event\":\"call\",\"where\":[{\"field\":\"caller\",\"in_list\":\"big\"}]},"
                        "{\"id\":\"OUT\",\"event\":\"call\",\"where\":[{\"field\":\"caller\",\"not_in_list\":\"big\"}]}]";
    fw_ruleset *rs = fwh_load(rules, strlen(rules), "big", list, len, err, sizeof err);
    if (!rs)
        fail_msg("refused: %s", err);
    char *desc = fwh_describe(rs);
    assert_non_null(strstr(desc, "2000000 entries"));
    free(desc);
    fwh_msg m[] = {
        fwh_str("{\"event_id\":\"first\",\"type\":\"call\",\"ts\":1,\"caller\":\"13900000000\"}"),
        fwh_str("{\"event_id\":\"last\",\"type\":\"call\",\"ts\":1,\"caller\":\"13905999997\"}"),
        fwh_str("{\"event_id\":\"gap\",\"type\":\"call\",\"ts\":1,\"caller\":\"13900000001\"}"),
        fwh_str("{\"event_id\":\"num\",\"type\":\"call\",\"ts\":1,\"caller\":13900000000}"),
    };
    fwt_result res;
    run(rs, m, 4, &res);
    assert_int_equal(fwt_count(&res, "IN", NULL, "first"), 1);
    assert_int_equal(fwt_count(&res, "IN", NULL, "last"), 1);
    assert_int_equal(fwt_count(&res, "OUT", NULL, "gap"), 1);
    /* a number is not a string: never in a list */
    assert_int_equal(fwt_count(&res, "OUT", NULL, "num"), 1);
    assert_int_equal(res.nalerts, 4);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
    free(list);
}

static void test_deeply_nested_any(void **state)
{
    (void)state;
    /* MAX_ANY_DEPTH: 16 levels of "any" are accepted, 17 refused. */
    char *open16 = fwh_repeat("[" OK_RULE ",{\"id\":\"A16\",\"event\":\"e\",\"where\":[",
                              "{\"any\":[", 16, "{\"field\":\"f\",\"op\":\"==\",\"value\":1}");
    char *r16 = fwh_repeat(open16, "]}", 16, "]}]");
    fw_ruleset *rs = load(r16);
    fwh_msg m[] = { fwh_str("{\"event_id\":\"x\",\"type\":\"e\",\"ts\":1,\"f\":1}"),
                    fwh_str(OK_EVENT("after")) };
    fwt_result res;
    run(rs, m, 2, &res);
    assert_int_equal(fwt_count(&res, "A16", NULL, "x"), 1);
    assert_int_equal(fwt_count(&res, "OK", NULL, "after"), 1);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);

    char *open17 = fwh_repeat("[{\"id\":\"A17\",\"event\":\"e\",\"where\":[",
                              "{\"any\":[", 17, "{\"field\":\"f\",\"op\":\"==\",\"value\":1}");
    char *r17 = fwh_repeat(open17, "]}", 17, "]}]");
    refused(r17, strlen(r17), NULL, NULL, 0, "nested deeper than 16 levels");
    /* 490 levels (under cJSON's 1000): refused by the same check, once. */
    char *open490 = fwh_repeat("[{\"id\":\"A490\",\"event\":\"e\",\"where\":[",
                               "{\"any\":[", 490, "{\"field\":\"f\",\"op\":\"==\",\"value\":1}");
    char *r490 = fwh_repeat(open490, "]}", 490, "]}]");
    refused(r490, strlen(r490), NULL, NULL, 0, "nested deeper than 16 levels");
    /* 600 levels (1200 JSON levels): not JSON for cJSON — refused, with
     * the place. */
    char *open600 = fwh_repeat("[{\"id\":\"A600\",\"event\":\"e\",\"where\":[",
                               "{\"any\":[", 600, "{\"field\":\"f\",\"op\":\"==\",\"value\":1}");
    char *r600 = fwh_repeat(open600, "]}", 600, "]}]");
    refused(r600, strlen(r600), NULL, NULL, 0, "not valid JSON (error near line 1");
    free(open16), free(r16), free(open17), free(r17), free(open490), free(r490);
    free(open600), free(r600);
}

static void test_oversized_rule_file(void **state)
{
    (void)state;
    /* MAX_RULE_FILE: a rules file over 64 MiB is refused unread. */
    size_t n = (64u << 20) + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '[';
    big[n - 1] = ']';
    refused(big, n, NULL, NULL, 0, "hostile.json: file is larger than 64 MiB");
    free(big);
}

/* ---- rules directories ------------------------------------------------------ */

/* Sanitizers reserve terabytes of address space: no RLIMIT_AS under them. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FWH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define FWH_SANITIZED 1
#endif
#endif

static char rdir[64];   /* the rules directory of the current test */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static int rdir_teardown(void **state)
{
    (void)state;
    if (rdir[0])
        nftw(rdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    rdir[0] = '\0';
    return 0;
}

/* A fresh rules directory holding one good rules file, ok.json. */
static void rdir_make(void)
{
    snprintf(rdir, sizeof rdir, "/tmp/fw-hostile-XXXXXX");
    if (!mkdtemp(rdir))
        fail_msg("mkdtemp: %s", strerror(errno));
    char path[128];
    snprintf(path, sizeof path, "%s/ok.json", rdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[" OK_RULE "]", f);
    fclose(f);
}

static const char *rpath(const char *name)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", rdir, name);
    return path;
}

/* A sparse file of `size` bytes: no disk, no page cache. */
static void make_sparse(const char *name, off_t size)
{
    int fd = open(rpath(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
}

struct dir_load {
    int rc;
    long grown_kib;   /* peak RSS growth during the load */
    char err[4096];
};

/* fw_ruleset_load_dir (what `rules check`, `replay` and the daemon's dir:
 * source call) in a child process, so that a load that blocks (a FIFO) or
 * grows without end (/dev/zero) fails this test rather than taking the
 * suite or the machine with it: the child gets 1 GiB of address space more
 * than it has (not under a sanitizer) and a 60 s alarm as the hang guard. */
static void load_dir_in_child(struct dir_load *out)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        alarm(60);
#ifndef FWH_SANITIZED
        long pages = 0;
        FILE *sf = fopen("/proc/self/statm", "r");
        if (sf && fscanf(sf, "%ld", &pages) != 1)
            pages = 0;
        if (sf)
            fclose(sf);
        rlim_t as = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
        struct rlimit rl = { as, as };
        setrlimit(RLIMIT_AS, &rl);
#endif
        static struct dir_load r;
        long before = fwh_peak_rss_kib();
        fw_ruleset *rs = NULL;
        r.rc = fw_ruleset_load_dir(rdir, 1, &rs, r.err, sizeof r.err);
        r.grown_kib = fwh_peak_rss_kib() - before;
        fw_ruleset_unref(rs);
        const char *p = (const char *)&r;
        size_t left = sizeof r;
        while (left) {
            ssize_t w = write(fds[1], p, left);
            if (w <= 0)
                _exit(3);
            p += w;
            left -= (size_t)w;
        }
        _exit(0);
    }
    close(fds[1]);
    char *p = (char *)out;
    size_t got = 0;
    while (got < sizeof *out) {
        ssize_t n = read(fds[0], p + got, sizeof *out - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status))
        fail_msg("loading the rules directory %s (signal %d: %s)",
                 WTERMSIG(status) == SIGALRM ? "hung: killed by the 60 s guard"
                                             : "crashed",
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != sizeof *out)
        fail_msg("the loading child failed (status %d)", status);
}

/* The directory must be refused with `needle` in the message, having held
 * far less memory than the hostile file's size. */
static void dir_refused(const char *needle)
{
    struct dir_load r;
    load_dir_in_child(&r);
    if (r.rc == 0)
        fail_msg("accepted a rules directory that should be refused (%s)", needle);
    if (!strstr(r.err, needle))
        fail_msg("refusal message lacks \"%s\":\n%s", needle, r.err);
    if (r.grown_kib > 64 * 1024)
        fail_msg("the refused load held %ld MiB at its peak", r.grown_kib / 1024);
}

static void dir_loads(void)
{
    struct dir_load r;
    load_dir_in_child(&r);
    if (r.rc != 0)
        fail_msg("refused: %s", r.err);
}

static void test_dir_huge_sparse_file(void **state)
{
    (void)state;
    /* `truncate -s 3G rules/huge.json`: refused by its size, unread. */
    rdir_make();
    make_sparse("huge.json", (off_t)3 << 30);
    dir_refused("/huge.json: 3221225472 bytes, over the 64 MiB limit for a rule file");
    unlink(rpath("huge.json"));
    make_sparse("huge.list", (off_t)3 << 30);
    dir_refused("/huge.list: 3221225472 bytes, over the 256 MiB limit for a watchlist file");
    unlink(rpath("huge.list"));
    dir_loads();   /* the good file alone */
}

static void test_dir_special_files(void **state)
{
    (void)state;
    /* Only regular files are read; anything else under a rule-file or
     * list-file name refuses the set, saying what it is. */
    static const struct {
        char make;   /* 'f' a FIFO, 'z' a link to /dev/zero, 'd' a directory */
        const char *name, *needle;
    } cases[] = {
        { 'f', "x.json", "/x.json: not a regular file (a FIFO)" },
        { 'z', "x.json", "/x.json: not a regular file (a symbolic link to a character device)" },
        { 'd', "x.json", "/x.json: not a regular file (a directory)" },
        { 'f', "l.list", "/l.list: not a regular file (a FIFO)" },
        { 'z', "l.list", "/l.list: not a regular file (a symbolic link to a character device)" },
    };
    rdir_make();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = rpath(cases[i].name);
        int rc = cases[i].make == 'f' ? mkfifo(p, 0644)
               : cases[i].make == 'z' ? symlink("/dev/zero", p) : mkdir(p, 0755);
        assert_int_equal(rc, 0);
        dir_refused(cases[i].needle);
        assert_int_equal(remove(rpath(cases[i].name)), 0);
    }
    /* every problem is listed, not only the first */
    assert_int_equal(mkfifo(rpath("a.json"), 0644), 0);
    make_sparse("b.json", (off_t)65 << 20);
    struct dir_load r;
    load_dir_in_child(&r);
    assert_int_equal(r.rc, -1);
    assert_non_null(strstr(r.err, "/a.json: not a regular file (a FIFO)"));
    assert_non_null(strstr(r.err, "/b.json: 68157440 bytes, over the 64 MiB limit"));
    unlink(rpath("a.json"));
    unlink(rpath("b.json"));

    /* A link to a regular file elsewhere is a normal deployment: read. */
    char real[128];
    snprintf(real, sizeof real, "%s/elsewhere", rdir);
    assert_int_equal(mkdir(real, 0755), 0);
    snprintf(real, sizeof real, "%s/elsewhere/real.list", rdir);
    FILE *f = fopen(real, "w");
    assert_non_null(f);
    fputs("13800000000\n", f);
    fclose(f);
    assert_int_equal(symlink(real, rpath("linked.list")), 0);
    dir_loads();
}

static void test_dir_totals(void **state)
{
    (void)state;
    /* Five watchlists of 250 MiB each: every one under its own limit,
     * 1250 MiB together over the directory's — refused before any is read. */
    rdir_make();
    char name[32];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "l%d.list", i);
        make_sparse(name, (off_t)250 << 20);
    }
    dir_refused(": the rule and watchlist files hold 1310720026 bytes together, over the 1 GiB "
                "limit for a rules directory");   /* 5 × 250 MiB + ok.json */
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "l%d.list", i);
        unlink(rpath(name));
    }
    /* 4096 rule and list files are the most a directory may hold. */
    for (int i = 0; i < 4096; i++) {
        snprintf(name, sizeof name, "l%04d.list", i);
        int fd = open(rpath(name), O_WRONLY | O_CREAT, 0644);
        assert_true(fd >= 0);
        close(fd);
    }
    dir_refused("more than 4096 rule and watchlist files (*.json, *.list)");
    unlink(rpath("l0000.list"));
    dir_loads();   /* ok.json and 4095 lists */
}

static void test_member_flood(void **state)
{
    (void)state;
    /* 20 000 distinct unknown members in one condition and 20 000 in the
     * top-level object: refused at once, with the count, without checking
     * 20 000 names against each other. */
    size_t n = 20000, cap = n * 16 + 256, len = 0;
    char *rules = malloc(cap);
    len += (size_t)sprintf(rules + len, "[{\"id\":\"M\",\"event\":\"e\",\"where\":[{\"field\":\"f\",\"regex\":\"x\"");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(rules + len, ",\"m%zu\":1", i);
    len += (size_t)sprintf(rules + len, "}]}]");
    refused(rules, len, NULL, NULL, 0, "where[0]: has 20002 members; no object");
    assert_true(strlen(err) < 16 * 1024);
    len = (size_t)sprintf(rules, "{\"rules\":[]");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(rules + len, ",\"m%zu\":1", i);
    len += (size_t)sprintf(rules + len, "}");
    refused(rules, len, NULL, NULL, 0, "has 20001 members; no object");
    free(rules);
}

static void test_error_flood(void **state)
{
    (void)state;
    /* 20 000 broken rules: 50 errors listed, the rest counted. */
    size_t cap = 20000 * 24 + 16, len = 0;
    char *rules = malloc(cap);
    rules[len++] = '[';
    for (int i = 0; i < 20000; i++)
        len += (size_t)snprintf(rules + len, cap - len, "%s{\"id\":\"E%d\"}", i ? "," : "", i);
    rules[len++] = ']';
    refused(rules, len, NULL, NULL, 0, "rule E0: event: missing");
    assert_non_null(strstr(err, "... and 19950 more errors"));
    free(rules);
}

static void test_hostile_watchlists(void **state)
{
    (void)state;
    /* A 10 MB line, NUL bytes and invalid UTF-8 in a list can never match
     * an event field: the list is refused, each line with its reason
     * (issue 10, item 10; they used to load as entries). */
    size_t n = 10u << 20;
    char *list = malloc(n + 64);
    memset(list, '7', n);
    size_t len = n;
    static const char rest[] = "\r\n13800000000\r\n\xff\xfe\n\0\n  # comment\n";
    memcpy(list + len, rest, sizeof rest - 1);
    len += sizeof rest - 1;
    const char *rules = "[{\"id\":\"IN\",\"event\":\"call\",\"where\":[{\"field\":\"c\",\"in_list\":\"l\"}]}]";
    refused(rules, strlen(rules), "l", list, len, "l.list: line 1: the entry longer than 1024 bytes");
    assert_non_null(strstr(err, "l.list: line 3: the entry is not valid UTF-8"));
    assert_non_null(strstr(err, "l.list: line 4: the entry holds a NUL byte"));
    /* CR line ends and indentation are trimmed; an indented '#' line is a
     * comment (values are trimmed first). */
    static const char ok[] = "\r\n13800000000\r\n  # comment\n";
    fw_ruleset *rs = fwh_load(rules, strlen(rules), "l", ok, sizeof ok - 1, err, sizeof err);
    if (!rs)
        fail_msg("refused: %s", err);
    char *desc = fwh_describe(rs);
    assert_non_null(strstr(desc, "1 entries"));
    free(desc);
    fwh_msg m[] = {
        fwh_str("{\"event_id\":\"a\",\"type\":\"call\",\"ts\":1,\"c\":\"13800000000\"}"),
        fwh_str("{\"event_id\":\"b\",\"type\":\"call\",\"ts\":1,\"c\":\"# comment\"}"),
    };
    fwt_result res;
    run(rs, m, 2, &res);
    assert_int_equal(res.nalerts, 1);
    assert_int_equal(fwt_count(&res, "IN", NULL, "a"), 1);
    fwt_result_free(&res);
    fw_ruleset_unref(rs);
    /* a bad list name is refused */
    refused(rules, strlen(rules), "bad name", "x\n", 2, "a watchlist name must be");
    free(list);
}

static void test_invalid_utf8_in_rules(void **state)
{
    (void)state;
    /* Alerts are JSON, so UTF-8: a rule set whose text would put invalid
     * UTF-8 into an alert (a rule name, a compared string, a field name)
     * must not produce invalid alerts. */
    static const char *const rules[] = {
        "[{\"id\":\"U1\",\"name\":\"bad \xff name\",\"event\":\"e\"}]",
        "[{\"id\":\"U2\",\"event\":\"e\",\"where\":[{\"field\":\"f\xfe\",\"not_regex\":\"x\"}]}]",
        "[{\"id\":\"U3\",\"event\":\"e\",\"where\":[{\"field\":\"g\",\"op\":\"!=\",\"value\":\"\xc0\x80\"}]}]",
    };
    for (int i = 0; i < 3; i++) {
        fw_ruleset *rs = fwh_load(rules[i], strlen(rules[i]), NULL, NULL, 0, err, sizeof err);
        if (!rs)
            continue; /* refused: fine */
        fwh_msg m[] = { fwh_str("{\"event_id\":\"x\",\"type\":\"e\",\"ts\":1,\"g\":\"v\"}") };
        fwt_result res;
        fwh_run(rs, NULL, m, 1, &res);
        fw_ruleset_unref(rs);
        assert_int_equal(res.nalerts, 1);
        fwh_check_alerts(&res);
        fwt_result_free(&res);
    }
}

/* test_hostile [PATTERN]: only the tests whose names match the glob. */
int main(int argc, char **argv)
{
    fw_event_init();
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_huge_strings),
        cmocka_unit_test(test_huge_numbers),
        cmocka_unit_test(test_nan_like_numbers),
        cmocka_unit_test(test_ts_out_of_range),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_megabyte_messages),
        cmocka_unit_test_teardown(test_catastrophic_backtracking, jit_back_on),
        cmocka_unit_test(test_regex_work_per_event),
        cmocka_unit_test(test_regex_heap_bounded),
        cmocka_unit_test(test_huge_alternation),
        cmocka_unit_test(test_thousands_of_rules),
        cmocka_unit_test(test_millions_of_list_entries),
        cmocka_unit_test(test_deeply_nested_any),
        cmocka_unit_test(test_oversized_rule_file),
        cmocka_unit_test_teardown(test_dir_huge_sparse_file, rdir_teardown),
        cmocka_unit_test_teardown(test_dir_special_files, rdir_teardown),
        cmocka_unit_test_teardown(test_dir_totals, rdir_teardown),
        cmocka_unit_test(test_member_flood),
        cmocka_unit_test(test_error_flood),
        cmocka_unit_test(test_hostile_watchlists),
        cmocka_unit_test(test_invalid_utf8_in_rules),
    };
    return cmocka_run_group_tests_name("hostile", tests, NULL, NULL);
}

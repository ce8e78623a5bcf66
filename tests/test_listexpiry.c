/* test_listexpiry.c — watchlist entries that expire (SPEC §2): the time
 * text (fw_time_parse, fw_duration_parse), the three-column .list line, the
 * loader's refusals with file:line, membership by event time at the
 * boundary (ts == UNTIL is not a member), and UNTIL changes through the
 * shared base + delta of src/watchlist.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/rulefiles.h"
#include "fraudwatch/ruleset.h"
#include "fraudwatch/timetext.h"
#include "ruleset_impl.h"

static int64_t t_ok(const char *s)
{
    int64_t v = -1;
    char err[256];
    if (fw_time_parse(s, &v, err, sizeof err) != 0)
        fail_msg("%s: %s", s, err);
    return v;
}

static void t_bad(const char *s, const char *needle)
{
    int64_t v = 12345;
    char err[256] = "";
    assert_int_equal(fw_time_parse(s, &v, err, sizeof err), -1);
    assert_int_equal(v, 12345);
    if (!strstr(err, needle))
        fail_msg("%s: \"%s\" lacks \"%s\"", s, err, needle);
}

static void test_time_parse(void **state)
{
    (void)state;
    assert_int_equal(t_ok("0"), 0);
    assert_int_equal(t_ok("1767225600000"), INT64_C(1767225600000));
    /* 2026-01-01T00:00:00Z = 1767225600 s */
    assert_int_equal(t_ok("2026-01-01T00:00Z"), INT64_C(1767225600000));
    assert_int_equal(t_ok("2026-01-01T00:00:00Z"), INT64_C(1767225600000));
    assert_int_equal(t_ok("2026-01-01T08:00:00+08:00"), INT64_C(1767225600000));
    assert_int_equal(t_ok("2025-12-31T19:30:00-04:30"), INT64_C(1767225600000));
    assert_int_equal(t_ok("2026-01-01T00:00:00.5Z"), INT64_C(1767225600500));
    assert_int_equal(t_ok("2026-01-01T00:00:00.05Z"), INT64_C(1767225600050));
    assert_int_equal(t_ok("2026-01-01T00:00:00.123+00:00"), INT64_C(1767225600123));
    assert_int_equal(t_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(t_ok("2024-02-29T12:00:00Z"), INT64_C(1709208000000));
    assert_int_equal(t_ok("9999-12-31T23:59:59.999Z"), INT64_C(253402300799999));
    t_bad("", "empty");
    t_bad("2026-01-01", "needs a time");
    t_bad("2026-01-01T00:00:00", "no offset");
    t_bad("2026-01-01 00:00:00Z", "needs a time");
    t_bad("2026-13-01T00:00Z", "no such date");
    t_bad("2025-02-29T00:00Z", "no such date");
    t_bad("2026-01-01T24:00Z", "no such time");
    t_bad("2026-01-01T00:00:00.1234Z", "1 to 3 digits");
    t_bad("2026-01-01T00:00+0800", "+HH:MM");
    t_bad("2026-01-01T00:00Zjunk", "after the offset");
    t_bad("1969-12-31T23:59:59Z", "before 1970");
    t_bad("1970-01-01T07:59:59+08:00", "before 1970");
    t_bad("-5", "not a time");
    t_bad("17e12", "not a time");
    t_bad("9999999999999999", "beyond 9999");
    t_bad("tomorrow", "not a time");

    char buf[FW_TIMETEXT_MAX];
    fw_time_format(INT64_C(1767225600000), buf, sizeof buf);
    assert_string_equal(buf, "2026-01-01T00:00:00Z");
    fw_time_format(INT64_C(1767225600123), buf, sizeof buf);
    assert_string_equal(buf, "2026-01-01T00:00:00.123Z");
    assert_int_equal(t_ok(buf), INT64_C(1767225600123));
}

static void test_duration_parse(void **state)
{
    (void)state;
    int64_t v;
    char err[256];
    assert_int_equal(fw_duration_parse("30s", &v, err, sizeof err), 0);
    assert_int_equal(v, 30000);
    assert_int_equal(fw_duration_parse("15m", &v, err, sizeof err), 0);
    assert_int_equal(v, 900000);
    assert_int_equal(fw_duration_parse("24h", &v, err, sizeof err), 0);
    assert_int_equal(v, 86400000);
    assert_int_equal(fw_duration_parse("7d", &v, err, sizeof err), 0);
    assert_int_equal(v, INT64_C(604800000));
    const char *bad[] = { "", "7", "d", "0d", "-1d", "7w", "7dd", "1.5h", " 7d", "7 d" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = 42;
        assert_int_equal(fw_duration_parse(bad[i], &v, err, sizeof err), -1);
        assert_int_equal(v, 42);
        assert_non_null(strstr(err, "not a duration"));
    }
}

static void test_line_columns(void **state)
{
    (void)state;
    const char *text = "# comment\n"
                       "13800000001\n"
                       "13800000002\t1767225600000\n"
                       "  13800000003 \t 2026-01-01T08:00+08:00 \t reported by bank A\tcase 7 \n"
                       "13800000004\t-\tnever expires\n"
                       "\n";
    fw_listtext it;
    fw_listentry e;
    char err[300];
    fw_listtext_init(&it, text, strlen(text));
    assert_int_equal(fw_listtext_entry(&it, &e, err, sizeof err), 1);
    assert_int_equal(e.n, 11);
    assert_memory_equal(e.value, "13800000001", 11);
    assert_true(e.until == FW_UNTIL_NEVER);
    assert_int_equal(e.reason_len, 0);
    assert_int_equal(fw_listtext_entry(&it, &e, err, sizeof err), 1);
    assert_memory_equal(e.value, "13800000002", 11);
    assert_int_equal(e.n, 11);
    assert_int_equal(e.until, INT64_C(1767225600000));
    assert_int_equal(fw_listtext_entry(&it, &e, err, sizeof err), 1);
    assert_int_equal(e.n, 11);
    assert_memory_equal(e.value, "13800000003", 11);
    assert_int_equal(e.until, INT64_C(1767225600000));
    assert_int_equal(e.reason_len, strlen("reported by bank A\tcase 7"));
    assert_memory_equal(e.reason, "reported by bank A\tcase 7", e.reason_len);
    assert_int_equal(fw_listtext_entry(&it, &e, err, sizeof err), 1);
    assert_true(e.until == FW_UNTIL_NEVER);
    assert_memory_equal(e.reason, "never expires", e.reason_len);
    assert_int_equal(fw_listtext_entry(&it, &e, err, sizeof err), 0);

    const char *bad = "ok\nv\tsoon\nw\t\tr\n\t123\nx\t2026-01-01T00:00\nlast\n";
    fw_listtext_init(&it, bad, strlen(bad));
    assert_int_equal(fw_listtext_entry(&it, &e, err, sizeof err), 1);
    assert_int_equal(fw_listtext_entry(&it, &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 2: UNTIL \"soon\" is not a time"));
    assert_int_equal(fw_listtext_entry(&it, &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 3: the UNTIL column is empty"));
    /* "\t123" trims to "123": a value of its own, no columns */
    assert_int_equal(fw_listtext_entry(&it, &e, err, sizeof err), 1);
    assert_memory_equal(e.value, "123", 3);
    assert_int_equal(fw_listtext_entry(&it, &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 5: UNTIL"));
    assert_non_null(strstr(err, "no offset"));
    assert_int_equal(fw_listtext_entry(&it, &e, err, sizeof err), 1);
    assert_memory_equal(e.value, "last", 4);
    assert_int_equal(fw_listtext_entry(&it, &e, err, sizeof err), 0);
}

static fw_ruleset *load_list(const char *text, char *err, size_t errlen)
{
    const char *rules = "[{\"id\":\"R1\",\"event\":\"call\",\"where\":"
                        "[{\"field\":\"caller\",\"in_list\":\"fraud\"}]}]";
    fw_rulefile f[2] = {
        { "fraud.list", text, strlen(text) },
        { "r.json", rules, strlen(rules) },
    };
    fw_ruleset *rs = NULL;
    if (fw_ruleset_load_files(f, 2, 1, &rs, err, errlen) != 0)
        return NULL;
    return rs;
}

static void test_boundary(void **state)
{
    (void)state;
    char err[2048];
    fw_ruleset *rs = load_list("a\nb\t1000\nc\t-\nd\t1970-01-01T08:00:01+08:00\tiso\n"
                               "e\t5\nb\t2000\n",   /* the last line of b wins */
                               err, sizeof err);
    if (!rs)
        fail_msg("%s", err);
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "a", INT64_C(253402300799999)));
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "b", 1999));    /* UNTIL-1 */
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "b", 2000));   /* ts == UNTIL */
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "b", 2001));
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "c", INT64_C(253402300799999)));
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "d", 999));
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "d", 1000));
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "e", 0));
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "e", 5));
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "zz", 0));
    assert_true(fw_ruleset_list_has(rs, "fraud", "e"));   /* at any time */
    size_t count;
    assert_true(fw_ruleset_list_info(rs, "fraud", NULL, &count));
    assert_int_equal(count, 5);
    fw_ruleset_unref(rs);
}

static void test_bad_lines_refused(void **state)
{
    (void)state;
    char err[2048];
    assert_null(load_list("a\nb\tnext week\nc\t2026-01-01\n", err, sizeof err));
    assert_non_null(strstr(err, "fraud.list: line 2: UNTIL \"next week\" is not a time"));
    assert_non_null(strstr(err, "fraud.list: line 3: UNTIL"));
}

/* An UNTIL changed, cleared and the entry removed through a delta on a
 * shared base (the daemon's path for `lists add --until`), and folded. */
static void test_delta_untils(void **state)
{
    (void)state;
    char err[2048];
    fw_ruleset *rs = load_list("a\t1000\nb\nc\t3000\n", err, sizeof err);
    if (!rs)
        fail_msg("%s", err);
    fw_listbuild *b = fw_listbuild_from(rs, "fraud");
    assert_non_null(b);
    const char *ch = "a\t5000\nb\t2000\nn\t100\n";
    fw_listbuild_add_entries(b, ch, strlen(ch));
    fw_listbuild_add(b, "c", 1);          /* a plain add: never expires */
    fw_listbuild_expire(b, "zz", 2, 1);   /* not an entry: nothing */
    assert_int_equal(fw_listbuild_count(b), 4);
    const char *rules = "[{\"id\":\"R1\",\"event\":\"call\",\"where\":"
                        "[{\"field\":\"caller\",\"in_list\":\"fraud\"}]}]";
    fw_rulefile f = { "r.json", rules, strlen(rules) };
    fw_listpart part = { "fraud", 2, b };
    fw_ruleset *rs2 = NULL;
    assert_int_equal(fw_ruleset_load_parts(&f, 1, &part, 1, rs, 2, &rs2, err, sizeof err), 0);
    fw_listbuild_free(b);
    assert_true(fw_ruleset_list_has_at(rs2, "fraud", "a", 4999));
    assert_false(fw_ruleset_list_has_at(rs2, "fraud", "a", 5000));
    assert_true(fw_ruleset_list_has_at(rs2, "fraud", "b", 1999));
    assert_false(fw_ruleset_list_has_at(rs2, "fraud", "b", 2000));
    assert_true(fw_ruleset_list_has_at(rs2, "fraud", "c", 100000));
    assert_false(fw_ruleset_list_has_at(rs2, "fraud", "n", 100));
    assert_false(fw_ruleset_list_has_at(rs2, "fraud", "zz", 0));
    /* the old set is untouched */
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "a", 1000));
    assert_true(fw_ruleset_list_has_at(rs, "fraud", "b", 100000));
    assert_false(fw_ruleset_list_has_at(rs, "fraud", "c", 3000));

    /* on top of rs2: remove a, put b back as in the base, re-add a plain */
    b = fw_listbuild_from(rs2, "fraud");
    fw_listbuild_remove(b, "a", 1);
    fw_listbuild_add(b, "b", 1);
    ch = "c\t3000\n";
    fw_listbuild_add_entries(b, ch, strlen(ch));
    assert_int_equal(fw_listbuild_count(b), 3);
    fw_listpart part3 = { "fraud", 3, b };
    fw_ruleset *rs3 = NULL;
    assert_int_equal(fw_ruleset_load_parts(&f, 1, &part3, 1, rs2, 3, &rs3, err, sizeof err),
                     0);
    fw_listbuild_free(b);
    assert_false(fw_ruleset_list_has(rs3, "fraud", "a"));
    assert_true(fw_ruleset_list_has_at(rs3, "fraud", "b", 100000));
    assert_true(fw_ruleset_list_has_at(rs3, "fraud", "c", 2999));
    assert_false(fw_ruleset_list_has_at(rs3, "fraud", "c", 3000));
    fw_ruleset_unref(rs);
    fw_ruleset_unref(rs2);
    fw_ruleset_unref(rs3);
}

/* Many changes: the delta is folded into a new base, untils kept. */
static void test_fold_keeps_untils(void **state)
{
    (void)state;
    char err[2048];
    fw_ruleset *rs = load_list("seed\t10\n", err, sizeof err);
    assert_non_null(rs);
    fw_listbuild *b = fw_listbuild_from(rs, "fraud");
    char line[64];
    for (int i = 0; i < 6000; i++) {
        int n = snprintf(line, sizeof line, "v%d\t%d\n", i, 1000 + i);
        fw_listbuild_add_entries(b, line, (size_t)n);
    }
    const char *rules = "[{\"id\":\"R1\",\"event\":\"call\",\"where\":"
                        "[{\"field\":\"caller\",\"in_list\":\"fraud\"}]}]";
    fw_rulefile f = { "r.json", rules, strlen(rules) };
    fw_listpart part = { "fraud", 2, b };
    fw_ruleset *rs2 = NULL;
    assert_int_equal(fw_ruleset_load_parts(&f, 1, &part, 1, rs, 2, &rs2, err, sizeof err), 0);
    fw_listbuild_free(b);
    for (int i = 0; i < 6000; i += 97) {
        snprintf(line, sizeof line, "v%d", i);
        assert_true(fw_ruleset_list_has_at(rs2, "fraud", line, 999 + i));
        assert_false(fw_ruleset_list_has_at(rs2, "fraud", line, 1000 + i));
    }
    assert_true(fw_ruleset_list_has_at(rs2, "fraud", "seed", 9));
    assert_false(fw_ruleset_list_has_at(rs2, "fraud", "seed", 10));
    fw_ruleset_unref(rs);
    fw_ruleset_unref(rs2);
}

/* rules check -v: per list, entries with an UNTIL, past ones, next, last. */
static void test_describe_expiry(void **state)
{
    (void)state;
    char err[2048];
    fw_ruleset *rs = load_list("a\t1000\nb\t3000\nc\t2500\nd\ne\t-\n", err, sizeof err);
    assert_non_null(rs);
    char buf[2048] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    fw_ruleset_describe_expiry(rs, 2000, f);
    fclose(f);
    if (!strstr(buf, "list fraud                    5 entries, 3 with an UNTIL, 1 of them "
                     "past, next ends 1970-01-01T00:00:02.500Z, last ends "
                     "1970-01-01T00:00:03Z\n"))
        fail_msg("%s", buf);
    fw_ruleset_unref(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_line_columns),
        cmocka_unit_test(test_boundary),
        cmocka_unit_test(test_bad_lines_refused),
        cmocka_unit_test(test_delta_untils),
        cmocka_unit_test(test_fold_keeps_untils),
        cmocka_unit_test(test_describe_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

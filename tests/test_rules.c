/* test_rules.c — every validation error names its place and reason, and a
 * refused set is refused whole; the names and .list text of rulefiles.c are
 * the same for the loader and the Redis store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fraudwatch/event.h"
#include "fraudwatch/rulefiles.h"
#include "fraudwatch/ruleset.h"

static const char LISTS[] = "# reported\n13800000000\n\n  13900000000  \n";

/* Loads one rules file (plus a watchlist "bad") and returns the error text,
 * or NULL when the set is valid. */
static char *load(const char *json)
{
    static char err[8192];
    fw_rulefile f[2] = {
        { "r.json", json, strlen(json) },
        { "bad.list", LISTS, sizeof LISTS - 1 },
    };
    fw_ruleset *rs = NULL;
    if (fw_ruleset_load_files(f, 2, 1, &rs, err, sizeof err) == 0) {
        fw_ruleset_unref(rs);
        return NULL;
    }
    return err;
}

static void expect_error(const char *json, const char *needle)
{
    char *err = load(json);
    if (!err)
        fail_msg("accepted: %s", json);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

#define RULE(body) "[{\"id\":\"R1\",\"event\":\"call\"" body "}]"

static void test_valid_forms(void **state)
{
    (void)state;
    assert_null(load(RULE(",\"where\":[{\"field\":\"a\",\"regex\":\"x\",\"flags\":\"i\"},"
                          "{\"field\":\"a.b\",\"not_regex\":\"^y$\"},"
                          "{\"field\":\"n\",\"op\":\"<=\",\"value\":3.5},"
                          "{\"field\":\"s\",\"op\":\"!=\",\"value\":\"x\"},"
                          "{\"field\":\"c\",\"in_list\":\"bad\"},"
                          "{\"field\":\"c\",\"not_in_list\":\"bad\"},"
                          "{\"any\":[{\"field\":\"x\",\"op\":\"==\",\"value\":1},"
                          "{\"any\":[{\"field\":\"y\",\"regex\":\"z\"}]}]}]")));
    assert_null(load("{\"rules\":" RULE(",\"threshold\":{\"group_by\":[\"a\",\"b\"],"
                                        "\"window_s\":604800,\"count\":{\">=\":2}}") "}"));
    assert_null(load("[{\"id\":\"S.1-x_y\",\"sequence\":[{\"event\":\"*\",\"key\":\"a\"},"
                     "{\"event\":\"t\",\"key\":\"b\",\"where\":[]}],\"within_s\":1,"
                     "\"severity\":\"critical\",\"enabled\":false,\"suppress_s\":0,"
                     "\"description\":\"d\",\"name\":\"n\"}]"));
}

static void test_unknown_member(void **state)
{
    (void)state;
    expect_error(RULE(",\"treshold\":{}"), "r.json: rule R1: treshold: unknown member \"treshold\"");
    expect_error(RULE(",\"where\":[{\"field\":\"a\",\"regexp\":\"x\"}]"), "where[0].regexp: unknown member");
    expect_error(RULE(",\"threshold\":{\"group_by\":\"a\",\"window_s\":5,\"count\":{\">=\":1},\"windows\":3}"),
                 "threshold.windows: unknown member");
    expect_error("{\"rules\":[],\"extra\":1}", "r.json: extra: unknown member");
    expect_error(RULE(",\"threshold\":{\"group_by\":\"a\",\"window_s\":5,\"count\":{\"gte\":1}}"),
                 "threshold.count.gte: unknown member");
    expect_error(RULE(",\"name\":\"a\",\"name\":\"b\""), "name: member appears more than once");
}

static void test_ids(void **state)
{
    (void)state;
    expect_error("[{\"event\":\"call\"}]", "rule #1: id: missing");
    expect_error("[{\"id\":\"bad id\",\"event\":\"call\"}]", "id: must be 1..64 characters");
    expect_error("[{\"id\":\"\",\"event\":\"call\"}]", "id: must be 1..64 characters");
    expect_error("[{\"id\":\"R1\",\"event\":\"call\"},{\"id\":\"R1\",\"event\":\"sms\"}]",
                 "rule R1: id: duplicate rule id");
    expect_error("[{\"id\":\"R1\"}]", "rule R1: event: missing");
    expect_error("[1]", "rule #1: a rule must be a JSON object");
}

static void test_regex_errors(void **state)
{
    (void)state;
    char *err = load(RULE(",\"where\":[{\"field\":\"text\",\"regex\":\"(ab\"}]"));
    assert_non_null(err);
    assert_non_null(strstr(err, "where[0].regex: regex \"(ab\" does not compile: "));
    assert_non_null(strstr(err, "missing closing parenthesis at offset 3"));
    expect_error(RULE(",\"where\":[{\"field\":\"t\",\"regex\":\"x\",\"flags\":\"g\"}]"),
                 "where[0].flags: must be \"i\"");
    expect_error(RULE(",\"where\":[{\"field\":\"t\",\"regex\":5}]"), "where[0].regex: must be a string");
}

static void test_condition_errors(void **state)
{
    (void)state;
    expect_error(RULE(",\"where\":[{\"field\":\"c\",\"in_list\":\"nope\"}]"),
                 "where[0].in_list: unknown watchlist \"nope\" (defined: bad");
    expect_error(RULE(",\"where\":[{\"field\":\"n\",\"op\":\"=<\",\"value\":1}]"), "where[0].op: must be one of");
    expect_error(RULE(",\"where\":[{\"field\":\"n\",\"op\":\"<\",\"value\":\"x\"}]"),
                 "where[0].value: a string compares only with");
    expect_error(RULE(",\"where\":[{\"field\":\"n\",\"op\":\"<\"}]"), "where[0].value: missing");
    expect_error(RULE(",\"where\":[{\"field\":\"n\",\"op\":\"<\",\"value\":true}]"),
                 "where[0].value: must be a number or a string");
    expect_error(RULE(",\"where\":[{\"field\":\"n\"}]"), "where[0]: needs one of regex");
    expect_error(RULE(",\"where\":[{\"field\":\"n\",\"regex\":\"a\",\"in_list\":\"bad\"}]"),
                 "where[0]: has more than one of");
    expect_error(RULE(",\"where\":[{\"regex\":\"a\"}]"), "where[0].field: missing");
    expect_error(RULE(",\"where\":[{\"field\":\"a..b\",\"regex\":\"a\"}]"), "has an empty part");
    expect_error(RULE(",\"where\":[{\"any\":[]}]"), "where[0].any: must be a non-empty array");
    expect_error(RULE(",\"where\":[{\"any\":[{\"field\":\"a\",\"regex\":\"(\"}]}]"),
                 "where[0].any[0].regex: regex");
    expect_error(RULE(",\"where\":{\"field\":\"a\"}"), "where: must be an array of conditions");
    expect_error(RULE(",\"where\":[{\"field\":\"a\",\"op\":\"==\",\"value\":1,\"flags\":\"i\"}]"),
                 "\"flags\" applies only to regex");

    /* any nested deeper than the limit */
    char deep[4096] = RULE(",\"where\":[");
    deep[strlen(deep) - 2] = '\0';
    for (int i = 0; i < 20; i++)
        strcat(deep, "{\"any\":[");
    strcat(deep, "{\"field\":\"a\",\"regex\":\"x\"}");
    for (int i = 0; i < 20; i++)
        strcat(deep, "]}");
    strcat(deep, "]}]");
    expect_error(deep, "nested deeper than 16 levels");
}

static void test_threshold_errors(void **state)
{
    (void)state;
    expect_error(RULE(",\"threshold\":{\"group_by\":\"a\",\"window_s\":0,\"count\":{\">=\":1}}"),
                 "threshold.window_s: 0 is out of range 1..604800");
    expect_error(RULE(",\"threshold\":{\"group_by\":\"a\",\"window_s\":604801,\"count\":{\">=\":1}}"),
                 "threshold.window_s: 604801 is out of range");
    expect_error(RULE(",\"threshold\":{\"group_by\":\"a\",\"window_s\":1.5,\"count\":{\">=\":1}}"),
                 "threshold.window_s: must be an integer");
    expect_error(RULE(",\"threshold\":{\"group_by\":\"a\",\"count\":{\">=\":1}}"), "threshold.window_s: missing");
    expect_error(RULE(",\"threshold\":{\"window_s\":5,\"count\":{\">=\":1}}"), "threshold.group_by: missing");
    expect_error(RULE(",\"threshold\":{\"group_by\":\"a\",\"window_s\":5}"), "needs exactly one of count, sum, distinct");
    expect_error(RULE(",\"threshold\":{\"group_by\":\"a\",\"window_s\":5,\"count\":{\">=\":1},\"sum\":{}}"),
                 "needs exactly one of count, sum, distinct");
    expect_error(RULE(",\"threshold\":{\"group_by\":\"a\",\"window_s\":5,\"sum\":{\">=\":1}}"),
                 "threshold.sum.field: missing");
    expect_error(RULE(",\"threshold\":{\"group_by\":\"a\",\"window_s\":5,\"count\":{\">=\":1,\"<\":3}}"),
                 "needs exactly one comparator");
    expect_error(RULE(",\"threshold\":{\"group_by\":\"a\",\"window_s\":5,\"count\":{\"!=\":1}}"),
                 "threshold.count.!=: unknown member");
    expect_error(RULE(",\"threshold\":{\"group_by\":[],\"window_s\":5,\"count\":{\">=\":1}}"),
                 "threshold.group_by: an array needs 1..8 fields");
    expect_error(RULE(",\"suppress_s\":-1"), "suppress_s: -1 is out of range 0..604800");
}

static void test_sequence_errors(void **state)
{
    (void)state;
    expect_error("[{\"id\":\"S\",\"sequence\":[{\"event\":\"a\",\"key\":\"k\"}],\"within_s\":5}]",
                 "sequence: needs 2..16 steps, has 1");
    expect_error("[{\"id\":\"S\",\"sequence\":[{\"event\":\"a\",\"key\":\"k\"},{\"event\":\"b\"}],\"within_s\":5}]",
                 "sequence[1].key: missing");
    expect_error("[{\"id\":\"S\",\"sequence\":[{\"event\":\"a\",\"key\":\"k\"},{\"event\":\"b\",\"key\":\"k\"}]}]",
                 "within_s: missing");
    expect_error("[{\"id\":\"S\",\"sequence\":[{\"event\":\"a\",\"key\":\"k\"},{\"event\":\"b\",\"key\":\"k\"}],"
                 "\"within_s\":5,\"event\":\"a\"}]", "event: a sequence rule has no \"event\"");
    expect_error("[{\"id\":\"S\",\"sequence\":[{\"event\":\"a\",\"key\":\"k\",\"keys\":1},{\"event\":\"b\",\"key\":\"k\"}],"
                 "\"within_s\":5}]", "sequence[0].keys: unknown member");
    expect_error(RULE(",\"within_s\":5"), "within_s: only a sequence rule has within_s");
}

static void test_files(void **state)
{
    (void)state;
    char err[1024];
    fw_ruleset *rs;
    const char *x = "[{\"id\":\"R1\",\n\"event\": }]";
    fw_rulefile bad = { "x.json", x, strlen(x) };
    assert_int_equal(fw_ruleset_load_files(&bad, 1, 1, &rs, err, sizeof err), -1);
    assert_non_null(strstr(err, "x.json: not valid JSON (error near line 2"));

    fw_rulefile trailing = { "t.json", "[] []", 5 };
    assert_int_equal(fw_ruleset_load_files(&trailing, 1, 1, &rs, err, sizeof err), -1);
    assert_non_null(strstr(err, "t.json: unexpected text after the JSON value at line 1, column 4"));

    fw_rulefile none = { "a.list", "x\n", 2 };
    assert_int_equal(fw_ruleset_load_files(&none, 1, 1, &rs, err, sizeof err), -1);
    assert_non_null(strstr(err, "no rules files"));

    /* Errors in two files are both reported, and nothing is loaded. */
    const char *a = "[{\"id\":\"A\",\"event\":1}]";
    const char *b = "[{\"id\":\"B\",\"event\":\"x\",\"severity\":\"urgent\"}]";
    fw_rulefile two[2] = { { "a.json", a, strlen(a) }, { "b.json", b, strlen(b) } };
    assert_int_equal(fw_ruleset_load_files(two, 2, 1, &rs, err, sizeof err), -1);
    assert_non_null(strstr(err, "a.json: rule A: event: must be an event type"));
    assert_non_null(strstr(err, "b.json: rule B: severity: must be low, medium, high or critical"));

    assert_int_equal(fw_ruleset_load_dir("/nonexistent-dir", 1, &rs, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent-dir: cannot open the rules directory"));
}

static void test_lists_and_describe(void **state)
{
    (void)state;
    char err[1024];
    fw_ruleset *rs;
    const char *json = "[{\"id\":\"R1\",\"event\":\"call\",\"where\":[{\"field\":\"c\",\"in_list\":\"bad\"}]}]";
    fw_rulefile f[2] = { { "r.json", json, strlen(json) },
                         { "bad.list", LISTS, sizeof LISTS - 1 } };
    assert_int_equal(fw_ruleset_load_files(f, 2, 7, &rs, err, sizeof err), 0);
    assert_int_equal(fw_ruleset_version(rs), 7);
    assert_int_equal(fw_ruleset_rule_count(rs), 1);
    assert_string_equal(fw_ruleset_rule_id(rs, 0), "R1");
    char *out = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&out, &len);
    fw_ruleset_describe(rs, mf);
    fclose(mf);
    assert_non_null(strstr(out, "list bad"));
    assert_non_null(strstr(out, "2 entries")); /* comment and blank line skipped */
    free(out);
    fw_ruleset_unref(rs);

    fw_rulefile badname[2] = { { "r.json", "[]", 2 }, { "b d.list", "x", 1 } };
    assert_int_equal(fw_ruleset_load_files(badname, 2, 1, &rs, err, sizeof err), -1);
    assert_non_null(strstr(err, "b d.list: a watchlist name must be"));
}

static void test_file_and_list_names(void **state)
{
    (void)state;
    /* One rule for watchlist names, the stricter of the two copies that
     * existed: no leading '.' (the loader used to accept ".x"). */
    static const char *const good[] = { "fraud_numbers", "a", "A.b-c_9", "x." };
    static const char *const bad[] = { "", ".hidden", ".", "b d", "x/y", "é",
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (!fw_rulefiles_valid_list_name(good[i], strlen(good[i])))
            fail_msg("\"%s\" refused as a watchlist name", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (fw_rulefiles_valid_list_name(bad[i], strlen(bad[i])))
            fail_msg("\"%s\" accepted as a watchlist name", bad[i]);
    assert_true(fw_rulefiles_valid_list_name("a234567890123456789012345678901234567890"
                                             "123456789012345678901234", 64));

    char err[1024];
    fw_ruleset *rs;
    fw_rulefile hidden[2] = { { "r.json", "[]", 2 }, { ".x.list", "1\n", 2 } };
    assert_int_equal(fw_ruleset_load_files(hidden, 2, 1, &rs, err, sizeof err), -1);
    assert_non_null(strstr(err, ".x.list: a watchlist name must be 1..64 characters "
                                "of A-Z a-z 0-9 _ . -, not starting with '.'"));

    assert_true(fw_rulefiles_valid_rules_name("calls.json", 10));
    assert_false(fw_rulefiles_valid_rules_name(".calls.json", 11));
    assert_false(fw_rulefiles_valid_rules_name("a/b.json", 8));
    assert_false(fw_rulefiles_valid_rules_name(".json", 5));
    assert_false(fw_rulefiles_valid_rules_name("calls.list", 10));
    assert_true(fw_rulefiles_is_rules("a.json"));
    assert_false(fw_rulefiles_is_rules(".json"));
    assert_true(fw_rulefiles_is_list("a.list"));
    assert_false(fw_rulefiles_is_list("a.list~"));
}

static void test_list_text(void **state)
{
    (void)state;
    static const char text[] = "# header\n\n  13800000000  \r\nx y\n   # indented\n"
                               "17000000101  # note\nlast";
    const char *want[] = { "13800000000", "x y", "17000000101  # note", "last" };
    const size_t lines[] = { 3, 4, 6, 7 };
    fw_listtext it;
    const char *v;
    size_t n, k = 0;
    fw_listtext_init(&it, text, sizeof text - 1);
    while (fw_listtext_next(&it, &v, &n)) {
        assert_true(k < 4);
        assert_int_equal(n, strlen(want[k]));
        assert_memory_equal(v, want[k], n);
        assert_int_equal(it.lineno, lines[k]);
        k++;
    }
    assert_int_equal(k, 4);
    fw_listtext_init(&it, "", 0);
    assert_false(fw_listtext_next(&it, &v, &n));
}

static void test_read_one_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/fw-test-rules-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], err[1024];
    char *data;
    size_t len;
    snprintf(path, sizeof path, "%s/n.list", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("1\n2\n", f);
    fclose(f);
    assert_int_equal(fw_rulefiles_read_file(path, FW_RULEFILE_LIST, &data, &len, err,
                                            sizeof err), 0);
    assert_int_equal(len, 4);
    assert_string_equal(data, "1\n2\n");
    free(data);
    unlink(path);

    assert_int_equal(mkfifo(path, 0644), 0);
    alarm(60);   /* hang guard */
    assert_int_equal(fw_rulefiles_read_file(path, FW_RULEFILE_LIST, &data, &len, err,
                                            sizeof err), -1);
    alarm(0);
    assert_non_null(strstr(err, "n.list: not a regular file (a FIFO)"));
    unlink(path);

    assert_int_equal(fw_rulefiles_read_file(path, FW_RULEFILE_RULES, &data, &len, err,
                                            sizeof err), -1);
    assert_non_null(strstr(err, "n.list: cannot open: No such file or directory"));
    rmdir(dir);

    /* Standard input has no size to check first: reading stops at the
     * limit + 1 bytes (here: an endless /dev/zero). */
    int saved = dup(0), zero = open("/dev/zero", O_RDONLY);
    assert_true(saved >= 0 && zero >= 0);
    assert_int_equal(dup2(zero, 0), 0);
    int rc = fw_rulefiles_read_file("-", FW_RULEFILE_RULES, &data, &len, err, sizeof err);
    dup2(saved, 0);
    close(saved);
    close(zero);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "standard input: more than 64 MiB, the limit for a "
                                "rule file"));
}

static void test_shipped_rules_load(void **state)
{
    (void)state;
    char err[8192];
    fw_ruleset *rs;
    int rc = fw_ruleset_load_dir(FW_SOURCE_DIR "/rules", 1, &rs, err, sizeof err);
    if (rc != 0)
        fail_msg("shipped rules refused: %s", err);
    assert_true(fw_ruleset_rule_count(rs) >= 10);
    fw_ruleset_unref(rs);
}

int main(void)
{
    fw_event_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_forms),
        cmocka_unit_test(test_unknown_member),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_regex_errors),
        cmocka_unit_test(test_condition_errors),
        cmocka_unit_test(test_threshold_errors),
        cmocka_unit_test(test_sequence_errors),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_lists_and_describe),
        cmocka_unit_test(test_file_and_list_names),
        cmocka_unit_test(test_list_text),
        cmocka_unit_test(test_read_one_file),
        cmocka_unit_test(test_shipped_rules_load),
    };
    return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}

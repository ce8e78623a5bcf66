/* test_rules_diff.c — the rule history's canonical form and rule-by-rule
 * diff (src/rules_diff.c), without Redis: list hashes that ignore comments,
 * order and repeats; members added / removed / changed; a moved rule; list
 * entry counts; a list known by hash only; a rule file that does not parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/rulehistory.h"

#define F(name, text) { name, text, sizeof(text) - 1 }

/* The diff of two in-memory sets, as text. */
static char *diff_of(const fw_rulefile *a, size_t na, const fw_rulefile *b, size_t nb,
                     fw_rhist_diff_stats *st, size_t *n)
{
    fw_rhist_file *fa, *fb;
    size_t ka, kb;
    fw_rhist_files_from(a, na, &fa, &ka);
    fw_rhist_files_from(b, nb, &fb, &kb);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    *n = fw_rhist_diff(fa, ka, fb, kb, out, st);
    fclose(out);
    fw_rhist_files_free(fa, ka);
    fw_rhist_files_free(fb, kb);
    return text;
}

static void test_list_canonical(void **state)
{
    (void)state;
    const char *x = "# reported\n  b \n\na\nb\n#c\nc";
    size_t len, n;
    char *t = fw_rhist_list_canonical(x, strlen(x), &len, &n);
    assert_string_equal(t, "a\nb\nc\n");
    assert_int_equal(n, 3);
    assert_int_equal(len, 6);
    char h1[65], h2[65];
    fw_rhist_sha256_hex(t, len, h1);
    free(t);
    const char *y = "c\na\nb\n";
    t = fw_rhist_list_canonical(y, strlen(y), &len, &n);
    fw_rhist_sha256_hex(t, len, h2);
    assert_string_equal(h1, h2);
    /* SHA-256 of "abc" (FIPS 180-2 example) */
    fw_rhist_sha256_hex("abc", 3, h2);
    assert_string_equal(h2, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    free(t);
    t = fw_rhist_list_canonical("", 0, &len, &n);
    assert_int_equal(n, 0);
    assert_int_equal(len, 0);
    free(t);
}

static void test_files_from(void **state)
{
    (void)state;
    const fw_rulefile in[] = {
        F("z.list", "2\n1\n"),
        F("a.json", "{\"rules\": []}"),
        F("README", "x"),
    };
    fw_rhist_file *f;
    size_t n;
    fw_rhist_files_from(in, 3, &f, &n);
    assert_int_equal(n, 2);
    assert_string_equal(f[0].name, "a.json");   /* rule files first */
    assert_false(f[0].is_list);
    assert_int_equal(f[0].bytes, 13);
    assert_string_equal(f[1].name, "z");
    assert_true(f[1].is_list);
    assert_string_equal(f[1].data, "1\n2\n");
    assert_int_equal(f[1].entries, 2);
    fw_rhist_files_free(f, n);
}

static void test_diff_rules(void **state)
{
    (void)state;
    const char *a1 = "{\"rules\": [{\"id\": \"R1\", \"event\": \"call\", \"severity\": \"high\", "
                     "\"where\": [{\"field\": \"x\", \"op\": \"<\", \"value\": 1}]},"
                     "{\"id\": \"R2\", \"event\": \"sms\"}, {\"id\": \"R3\", \"event\": \"call\"}]}";
    /* R1: where changed, severity removed, name added (keys reordered and
     * spaced differently: not a change); R2 removed; R3 moved; R4 added. */
    const char *b1 = "{\"rules\":[{\"where\":[{\"value\":2,\"field\":\"x\",\"op\":\"<\"}],"
                     "\"event\":\"call\",\"id\":\"R1\",\"name\":\"n\"}]}";
    const char *b2 = "{\"rules\": [{\"id\": \"R3\", \"event\": \"call\"}, {\"id\": \"R4\", "
                     "\"event\": \"call\"}]}";
    const fw_rulefile a[] = { { "a.json", a1, strlen(a1) } };
    const fw_rulefile b[] = { { "a.json", b1, strlen(b1) }, { "b.json", b2, strlen(b2) } };
    fw_rhist_diff_stats st;
    size_t n;
    char *t = diff_of(a, 1, b, 2, &st, &n);
    assert_non_null(strstr(t, "rule R1 (a.json): changed: severity (removed), where, name (added)\n"));
    assert_non_null(strstr(t, "rule R2 (a.json): removed\n"));
    assert_non_null(strstr(t, "rule R3 (b.json): changed: moved from a.json\n"));
    assert_non_null(strstr(t, "rule R4 (b.json): added\n"));
    assert_int_equal(st.rules_added, 1);
    assert_int_equal(st.rules_removed, 1);
    assert_int_equal(st.rules_changed, 2);
    assert_int_equal(n, 4);
    free(t);
    /* the same set: nothing */
    t = diff_of(a, 1, a, 1, &st, &n);
    assert_int_equal(n, 0);
    assert_string_equal(t, "");
    free(t);
    /* a file that is not a rule file is named, not silently skipped */
    const fw_rulefile c[] = { F("a.json", "{") };
    t = diff_of(a, 1, c, 1, &st, &n);
    assert_non_null(strstr(t, "file a.json (after): not a rule file"));
    assert_true(n >= 1);
    free(t);
}

static void test_diff_lists(void **state)
{
    (void)state;
    const fw_rulefile a[] = { F("f.list", "1\n2\n3\n"), F("g.list", "x\n") };
    const fw_rulefile b[] = { F("f.list", "# new\n4\n2\n3\n5\n"), F("h.list", "y\nz\n") };
    fw_rhist_diff_stats st;
    size_t n;
    char *t = diff_of(a, 2, b, 2, &st, &n);
    assert_non_null(strstr(t, "list f: 2 entries added, 1 removed (3 -> 4)\n"));
    assert_non_null(strstr(t, "list g: removed (1 entry)\n"));
    assert_non_null(strstr(t, "list h: added (2 entries)\n"));
    assert_int_equal(st.lists_changed, 1);
    assert_int_equal(n, 3);
    free(t);
    /* the same entries in another order and with comments: unchanged */
    const fw_rulefile c[] = { F("f.list", "#x\n3\n1\n2\n2\n"), F("g.list", "x") };
    t = diff_of(a, 2, c, 2, &st, &n);
    assert_int_equal(n, 0);
    free(t);
    /* a side known by hash only: changed, without counts */
    fw_rhist_file *fa, *fb;
    size_t ka, kb;
    fw_rhist_files_from(a, 1, &fa, &ka);
    fw_rhist_files_from(b, 1, &fb, &kb);
    free(fa[0].data);
    fa[0].data = NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    n = fw_rhist_diff(fa, ka, fb, kb, out, &st);
    fclose(out);
    assert_non_null(strstr(text, "list f: changed (3 -> 4 entries; the contents of the "
                                 "before side were kept by hash only"));
    assert_int_equal(st.unknown, 1);
    free(text);
    fw_rhist_files_free(fa, ka);
    fw_rhist_files_free(fb, kb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_canonical),
        cmocka_unit_test(test_files_from),
        cmocka_unit_test(test_diff_rules),
        cmocka_unit_test(test_diff_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_console.c — the console's pieces that need no network: the routing
 * table (parse errors by line, first match, prefix / regex / subject / *,
 * numbers as digits, the default unit), the reader of alert messages (what
 * is refused, shadow and snoozed alerts, the search terms), passwords and
 * names, the webhook signature (RFC 4231 vectors), and the console's settings (its table, refusals, and
 * docs/console.md agreeing with the table). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "fraudwatch/config.h"

static const char *route_of(const fw_con_routes *r, const char *alert_json)
{
    cJSON *a = cJSON_Parse(alert_json);
    assert_non_null(a);
    static char unit[256];
    snprintf(unit, sizeof unit, "%s", fw_con_route(r, a));
    cJSON_Delete(a);
    return unit;
}

static void routes_match_in_order(void **state)
{
    (void)state;
    const char *text = "# comment\n"
                       "\n"
                       "callee\tprefix:1380\tstation-a\r\n"
                       "payer.phone\tregex:^139[0-4]\tstation-b\n"
                       "subject\tprefix:0085\thk\n"
                       "amount\tprefix:5000\tbig\n";
    char err[256];
    fw_con_routes *r = fw_con_routes_parse(text, strlen(text), err, sizeof err);
    assert_non_null(r);
    assert_int_equal(fw_con_routes_count(r), 4);
    assert_string_equal(route_of(r, "{\"subject\":\"x\",\"fields\":{\"callee\":\"13801112222\"}}"),
                        "station-a");
    /* the first match wins: callee matches before subject */
    assert_string_equal(route_of(r, "{\"subject\":\"0085123\",\"fields\":{\"callee\":\"13801\"}}"),
                        "station-a");
    assert_string_equal(route_of(r, "{\"subject\":\"0085123\",\"fields\":{\"callee\":\"1390\"}}"),
                        "hk");
    assert_string_equal(route_of(r, "{\"subject\":\"s\",\"fields\":{\"payer\":{\"phone\":\"13920000000\"}}}"),
                        "station-b");
    assert_string_equal(route_of(r, "{\"subject\":\"s\",\"fields\":{\"payer\":{\"phone\":\"13950000000\"}}}"),
                        FW_CON_DEFAULT_UNIT);
    /* a number compares as its digits; a subject is not read from fields */
    assert_string_equal(route_of(r, "{\"subject\":\"s\",\"fields\":{\"amount\":50001}}"), "big");
    assert_string_equal(route_of(r, "{\"subject\":\"s\",\"fields\":{\"subject\":\"0085\"}}"),
                        FW_CON_DEFAULT_UNIT);
    assert_string_equal(route_of(NULL, "{\"subject\":\"s\"}"), FW_CON_DEFAULT_UNIT);
    fw_con_routes_free(r);

    const char *star = "callee\tprefix:1\ta\n*\tprefix:\tdesk\n";
    r = fw_con_routes_parse(star, strlen(star), err, sizeof err);
    assert_non_null(r);
    assert_string_equal(route_of(r, "{\"subject\":\"s\",\"fields\":{\"callee\":\"2\"}}"), "desk");
    fw_con_routes_free(r);
}

static void routes_refused_by_line(void **state)
{
    (void)state;
    static const struct { const char *text, *want; } bad[] = {
        { "callee prefix:1 a\n", "line 1: expected FIELD<TAB>" },
        { "# x\ncallee\tprefix:1\n", "line 2: expected" },
        { "callee\tsuffix:1\ta\n", "line 1: the second column must start with prefix: or regex:" },
        { "callee\tregex:(\ta\n", "line 1: the regex does not compile: missing closing parenthesis" },
        { "callee\tprefix:1\tbad unit\n", "line 1: the unit \"bad unit\" is not a name" },
        { "cal lee\tprefix:1\ta\n", "line 1: the field \"cal lee\"" },
        { "callee\tprefix:1\ta\textra\n", "line 1: expected" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        fw_con_routes *r = fw_con_routes_parse(bad[i].text, strlen(bad[i].text), err, sizeof err);
        if (r)
            fail_msg("accepted: %s", bad[i].text);
        if (!strstr(err, bad[i].want))
            fail_msg("for %s: expected \"%s\" in \"%s\"", bad[i].text, bad[i].want, err);
    }
}

static void alert_reader(void **state)
{
    (void)state;
    static const struct { const char *msg, *want; } bad[] = {
        { "not json", "not JSON" },
        { "[1]", "not a JSON object" },
        { "{} x", "trailing bytes" },
        { "{\"rule_id\":\"R\",\"severity\":\"low\",\"subject\":\"s\",\"detected_ts\":1}", "alert_id" },
        { "{\"alert_id\":\"a b\",\"rule_id\":\"R\",\"severity\":\"low\",\"subject\":\"s\",\"detected_ts\":1}", "alert_id" },
        { "{\"alert_id\":\"a\",\"rule_id\":\"R\",\"severity\":\"urgent\",\"subject\":\"s\",\"detected_ts\":1}", "severity" },
        { "{\"alert_id\":\"a\",\"rule_id\":\"R\",\"severity\":\"low\",\"subject\":5,\"detected_ts\":1}", "subject" },
        { "{\"alert_id\":\"a\",\"rule_id\":\"R\",\"severity\":\"low\",\"subject\":\"s\",\"detected_ts\":\"1\"}", "detected_ts" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fw_con_alert a;
        char why[256] = "";
        if (fw_con_alert_parse(bad[i].msg, strlen(bad[i].msg), &a, why, sizeof why) == 0)
            fail_msg("accepted: %s", bad[i].msg);
        if (!strstr(why, bad[i].want))
            fail_msg("for %s: expected \"%s\" in \"%s\"", bad[i].msg, bad[i].want, why);
    }
    /* not NUL-terminated, as a Kafka payload */
    const char good[] = "{\"alert_id\":\"9f3c\",\"rule_id\":\"R301\",\"severity\":\"critical\","
                        "\"subject\":\"13800138000\",\"detected_ts\":1700000000012,"
                        "\"fields\":{\"callee\":\"13800138000\",\"amount\":52000,\"duration_s\":7,"
                        "\"payee\":\"6222000011112222\"},"
                        "\"evidence\":{\"steps\":[{\"fields\":{\"caller\":\"17000000000\"}}]}}XXXX";
    fw_con_alert a;
    char why[256];
    assert_int_equal(fw_con_alert_parse(good, strlen(good) - 4, &a, why, sizeof why), 0);
    assert_string_equal(a.id, "9f3c");
    assert_true(a.live);
    assert_int_equal(a.detected_ts, 1700000000012LL);
    /* terms: the subject (once), string fields, long integers, step fields;
     * not the id (an alert is found by its id through its hash) */
    const char *want[] = { "13800138000", "6222000011112222", "17000000000" };
    assert_int_equal(a.nterms, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(a.terms[i], want[i]);
    fw_con_alert_free(&a);
    const char *shadow = "{\"alert_id\":\"x\",\"rule_id\":\"R\",\"severity\":\"low\","
                         "\"subject\":\"s\",\"detected_ts\":1,\"shadow\":true}";
    assert_int_equal(fw_con_alert_parse(shadow, strlen(shadow), &a, why, sizeof why), 0);
    assert_false(a.live);
    fw_con_alert_free(&a);
}

static void passwords_and_names(void **state)
{
    (void)state;
    char h[512];
    assert_int_equal(fw_con_hash_password("correct horse", h, sizeof h), 0);
    assert_memory_equal(h, "$y$", 3);
    assert_true(fw_con_check_password("correct horse", h));
    assert_false(fw_con_check_password("correct hors", h));
    assert_false(fw_con_check_password("correct horse", NULL));
    assert_false(fw_con_check_password("", ""));
    char h2[512];
    assert_int_equal(fw_con_hash_password("correct horse", h2, sizeof h2), 0);
    assert_string_not_equal(h, h2);     /* salted */
    char t1[65], t2[65];
    assert_int_equal(fw_con_random_hex(t1), 0);
    assert_int_equal(fw_con_random_hex(t2), 0);
    assert_int_equal(strlen(t1), 64);
    assert_string_not_equal(t1, t2);
    assert_true(fw_con_ct_equal(t1, t1));
    assert_false(fw_con_ct_equal(t1, t2));
    assert_false(fw_con_ct_equal("", ""));
    assert_true(fw_con_name_ok("station-a.b_c:d@e"));
    assert_false(fw_con_name_ok(""));
    assert_false(fw_con_name_ok("a b"));
    assert_false(fw_con_name_ok("a/b"));
    char long_name[200];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_false(fw_con_name_ok(long_name));
}

/* RFC 4231 test cases 1 and 2: the webhook signature's HMAC-SHA256. */
static void webhook_hmac(void **state)
{
    (void)state;
    char out[65];
    fw_con_hmac_sha256_hex("Jefe", "what do ya want for nothing?", 28, out);
    assert_string_equal(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    char key[21];
    memset(key, 0x0b, 20);
    key[20] = '\0';
    fw_con_hmac_sha256_hex(key, "Hi There", 8, out);
    assert_string_equal(out, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 18];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void settings(void **state)
{
    (void)state;
    fw_settings *s = fw_console_config_new();
    char err[1024];
    assert_non_null(s);
    assert_string_equal(s->console_listen, "127.0.0.1:8080");
    assert_int_equal(s->console_retention_days, 180);
    assert_string_equal(s->group_id, "fraudwatch-console");
    /* off the loopback: parses, but validate refuses it without TLS */
    assert_int_equal(fw_config_set(s, "console.listen", "0.0.0.0:8080", "--set console.listen=0.0.0.0:8080",
                                   err, sizeof err), 0);
    assert_int_equal(fw_config_validate(s, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a loopback address, and no TLS"));
    assert_non_null(strstr(err, "--set console.listen=0.0.0.0:8080"));
    assert_int_equal(fw_config_set(s, "console.listen", "127.0.0.1:8080", NULL, err, sizeof err), 0);
    assert_int_equal(fw_config_set(s, "console.tls_cert_file", FW_SOURCE_DIR "/README.md", NULL,
                                   err, sizeof err), 0);
    assert_int_equal(fw_config_validate(s, err, sizeof err), -1);
    assert_non_null(strstr(err, "go together"));
    assert_int_equal(fw_config_set(s, "console.tls_cert_file", "", NULL, err, sizeof err), 0);
    assert_int_equal(fw_config_set(s, "console.retention_days", "0", NULL, err, sizeof err), -1);
    assert_int_equal(fw_config_set(s, "console.redis", "http://x", NULL, err, sizeof err), -1);
    /* a daemon key is not a console key */
    assert_int_equal(fw_config_set(s, "input.topics", "x", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown key"));
    assert_int_equal(fw_config_set(s, "console.retention_dayz", "5", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "did you mean \"console.retention_days\""));
    assert_int_equal(fw_config_set(s, "kafka.consumer.group.id", "g", NULL, err, sizeof err), -1);
    assert_int_equal(fw_config_set(s, "kafka.consumer.fetch.wait.max.ms", "50", NULL, err, sizeof err), 0);
    assert_int_equal(fw_config_set(s, "console.redis", "redis://u:hunter2pw@127.0.0.1:1/2", NULL,
                                   err, sizeof err), 0);
    assert_int_equal(fw_config_validate(s, err, sizeof err), 0);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    fw_config_print(s, f);
    fclose(f);
    assert_null(strstr(out, "hunter2pw"));
    assert_non_null(strstr(out, "kafka.consumer.fetch.wait.max.ms = 50"));
    free(out);
    fw_config_free(s);

    /* docs/console.md embeds the table */
    f = open_memstream(&out, &len);
    fw_console_config_write_docs(f);
    fclose(f);
    char *doc = slurp(FW_SOURCE_DIR "/docs/console.md");
    assert_non_null(doc);
    if (!strstr(doc, out))
        fail_msg("docs/console.md: the settings table differs from what "
                 "fw_console_config_write_docs() prints:\n%s", out);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes_match_in_order),
        cmocka_unit_test(routes_refused_by_line),
        cmocka_unit_test(alert_reader),
        cmocka_unit_test(passwords_and_names),
        cmocka_unit_test(settings),
        cmocka_unit_test(webhook_hmac),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

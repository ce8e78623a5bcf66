/* test_snooze.c — shadow rules, snoozes and the per-rule counts (issue
 * 11, items 2, 6, 7; SPEC §2 "Shadow rules", "Snoozes"): the UNTIL parser,
 * the snooze file, and the semantics through a real pipeline — a shadow
 * rule fires exactly where its live twin does, a snoozed fire still
 * starts suppression, ts == UNTIL is not snoozed, and the counts per rule
 * and mode say what happened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/event.h"
#include "fraudwatch/snooze.h"
#include "fraudwatch/timetext.h"
#include "harness.h"
#include "ruleset_impl.h"

static char err[8192];

static void run(const char *rules, const char *events, uint32_t threads, fwt_result *res)
{
    if (fwt_run(rules, NULL, events, threads, res, err, sizeof err) != 0)
        fail_msg("run failed: %s", err);
    assert_int_equal(res->flag_mismatches, 0);
}

static fw_ruleset *load(const char *rules)
{
    fw_rulefile f = { "r.json", rules, strlen(rules) };
    fw_ruleset *rs = NULL;
    if (fw_ruleset_load_files(&f, 1, 1, &rs, err, sizeof err) != 0)
        fail_msg("rules refused: %s", err);
    return rs;
}

static fw_snoozes *snoozes(const char *text, const fw_ruleset *rs)
{
    fw_snoozes *s = NULL;
    if (fw_snoozes_parse("s.tsv", text, strlen(text), rs, &s, err, sizeof err) != 0)
        fail_msg("snoozes refused: %s", err);
    return s;
}

static bool flag(const cJSON *a, const char *name)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, name));
}

/* ---- UNTIL and durations ---------------------------------------------------- */

/* The snooze's UNTIL and --for go through the one time parser
 * (src/timetext.c, tested whole in test_listexpiry.c); here, the forms the
 * snooze documentation shows. */
static int64_t t(const char *s)
{
    int64_t ms;
    char terr[256];
    if (fw_time_parse(s, &ms, terr, sizeof terr) != 0)
        fail_msg("%s: %s", s, terr);
    return ms;
}

static void refused(const char *s, const char *want)
{
    int64_t ms;
    char terr[256] = "";
    assert_int_equal(fw_time_parse(s, &ms, terr, sizeof terr), -1);
    if (!strstr(terr, want))
        fail_msg("%s: \"%s\" does not say \"%s\"", s, terr, want);
}

static void test_time_parse(void **state)
{
    (void)state;
    assert_int_equal(t("1700000000000"), 1700000000000LL);
    assert_int_equal(t("2023-11-14T22:13:20Z"), 1700000000000LL);
    assert_int_equal(t("2023-11-15T06:13:20+08:00"), 1700000000000LL);
    assert_int_equal(t("2023-11-14T17:13:20-05:00"), 1700000000000LL);
    assert_int_equal(t("2023-11-14T22:13:20.250Z"), 1700000000250LL);
    refused("2023-11-14T22:13:20", "offset");
    refused("tomorrow", "not a time");

    int64_t ms;
    char terr[256];
    assert_int_equal(fw_duration_parse("24h", &ms, terr, sizeof terr), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(fw_duration_parse("7d", &ms, terr, sizeof terr), 0);
    assert_int_equal(ms, 7 * 86400000LL);
    assert_int_equal(fw_duration_parse("24", &ms, terr, sizeof terr), -1);
    assert_int_equal(fw_duration_parse("0h", &ms, terr, sizeof terr), -1);

    char buf[FW_TIMETEXT_MAX];
    fw_time_format(1700000000000LL, buf, sizeof buf);
    assert_string_equal(buf, "2023-11-14T22:13:20Z");
    fw_time_format(1700000000250LL, buf, sizeof buf);
    assert_string_equal(buf, "2023-11-14T22:13:20.250Z");
    assert_int_equal(t(buf), 1700000000250LL);
}

/* ---- the snooze file ------------------------------------------------------ */

static const char *two_rules =
    "[{\"id\":\"P1\",\"event\":\"call\",\"subject\":\"caller\",\"suppress_s\":100,"
    "\"where\":[{\"field\":\"d\",\"op\":\">\",\"value\":10}]},"
    " {\"id\":\"P2\",\"event\":\"call\",\"subject\":\"caller\","
    "\"where\":[{\"field\":\"d\",\"op\":\">\",\"value\":10}]}]";

static void test_snooze_file(void **state)
{
    (void)state;
    fw_ruleset *rs = load(two_rules);
    fw_snoozes *s = snoozes("# the bank's call centre\n"
                            "\n"
                            "P1\t95588\t2023-11-15T06:13:20+08:00\tbank call centre\r\n"
                            "*\t10086\t1700000000000\n"
                            " P2 \t138 001\t1700000000000 \n", rs);
    assert_int_equal(fw_snoozes_count(s), 3);
    assert_true(fw_snoozes_match(s, "P1", "95588", 5, 1700000000000LL - 1));
    assert_false(fw_snoozes_match(s, "P1", "95588", 5, 1700000000000LL));  /* ts == UNTIL */
    assert_false(fw_snoozes_match(s, "P2", "95588", 5, 0));               /* another rule */
    assert_true(fw_snoozes_match(s, "P2", "10086", 5, 5));                /* "*" */
    assert_true(fw_snoozes_match(s, "ANY", "10086", 5, 5));
    assert_true(fw_snoozes_match(s, "P2", "138 001", 7, 5));  /* the subject is exact */
    assert_false(fw_snoozes_match(s, "P2", "138001", 6, 5));
    assert_false(fw_snoozes_match(NULL, "P2", "10086", 5, 5));
    const fw_snooze *z = fw_snoozes_at(s, 1);     /* sorted: "*" < "P1" < "P2" */
    assert_string_equal(z->rule, "P1");
    assert_string_equal(z->reason, "bank call centre");
    fw_snoozes_unref(s);

    /* Every bad line is named, and nothing is loaded. */
    fw_snoozes *none = NULL;
    const char *bad = "P1\t95588\t1700000000000\n"
                      "P9\t95588\t1700000000000\n"                 /* 2: no such rule */
                      "P1\t95588\n"                                 /* 3: no UNTIL */
                      "P1\t95588\t2023-11-14T22:13:20\n"            /* 4: no offset */
                      "P1\t\t1700000000000\n"                       /* 5: empty subject */
                      "P 1\tx\t1700000000000\n"                     /* 6: not a rule id */
                      "P1\tx\t1\tr\textra\n";                       /* 7: five fields */
    assert_int_equal(fw_snoozes_parse("s.tsv", bad, strlen(bad), rs, &none, err, sizeof err),
                     -1);
    assert_null(none);
    const char *want[] = { "s.tsv:2: no rule \"P9\"", "s.tsv:3: expected RULE<TAB>",
                           "s.tsv:4: UNTIL: \"2023-11-14T22:13:20\" is not a time: no offset",
                           "s.tsv:5: the subject is empty", "s.tsv:6: the rule must be",
                           "s.tsv:7: expected", "no snooze was loaded" };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(err, want[i]))
            fail_msg("missing \"%s\" in:\n%s", want[i], err);
    assert_null(strstr(err, "s.tsv:1:"));
    fw_ruleset_unref(rs);
}

/* ---- mode -------------------------------------------------------------------- */

static void test_mode_member(void **state)
{
    (void)state;
    fw_rulefile f = { "r.json", "[{\"id\":\"M\",\"event\":\"call\",\"mode\":\"dark\"}]", 0 };
    f.len = strlen(f.data);
    fw_ruleset *rs = NULL;
    assert_int_equal(fw_ruleset_load_files(&f, 1, 1, &rs, err, sizeof err), -1);
    if (!strstr(err, "r.json") || !strstr(err, "M") || !strstr(err, "mode") ||
        !strstr(err, "must be \"live\" or \"shadow\""))
        fail_msg("unclear: %s", err);
    f.data = "[{\"id\":\"M\",\"event\":\"call\",\"mode\":true}]";
    f.len = strlen(f.data);
    assert_int_equal(fw_ruleset_load_files(&f, 1, 1, &rs, err, sizeof err), -1);

    /* Changing the mode keeps the state: it is not in the signature. */
#define BASE(mode) "[{\"id\":\"T\",\"event\":\"call\"," mode "\"threshold\":{\"group_by\":" \
                   "\"caller\",\"window_s\":60,\"count\":{\">=\":2}}}]"
    const char *a = BASE(""), *b = BASE("\"mode\":\"shadow\","), *c = BASE("\"mode\":\"live\",");
#undef BASE
    fw_ruleset *ra = load(a), *rb = load(b), *rc = load(c);
    assert_false(ra->rules[0].shadow);
    assert_true(rb->rules[0].shadow);
    assert_false(rc->rules[0].shadow);
    assert_true(ra->rules[0].state_sig == rb->rules[0].state_sig);
    assert_true(ra->rules[0].state_sig == rc->rules[0].state_sig);
    assert_string_equal(fw_ruleset_rule_mode(rb, 0), "shadow");
    assert_string_equal(fw_ruleset_rule_mode(ra, 0), "live");
    fw_ruleset_unref(ra);
    fw_ruleset_unref(rb);
    fw_ruleset_unref(rc);
}

/* ---- semantics through the pipeline ------------------------------------------ */

/* The same threshold and sequence rules twice, live and shadow: the shadow
 * twin fires on exactly the same events (same state, same suppression),
 * flagged, to the shadow output; alert_id depends on the rule id only. */
static void test_shadow_fires_like_live(void **state)
{
    (void)state;
    const char *rules =
        "[{\"id\":\"L\",\"event\":\"call\",\"threshold\":{\"group_by\":\"caller\","
        "\"window_s\":60,\"count\":{\">=\":2}},\"suppress_s\":30},"
        " {\"id\":\"S\",\"mode\":\"shadow\",\"event\":\"call\",\"threshold\":{\"group_by\":"
        "\"caller\",\"window_s\":60,\"count\":{\">=\":2}},\"suppress_s\":30},"
        " {\"id\":\"QL\",\"sequence\":[{\"event\":\"call\",\"key\":\"callee\"},"
        "{\"event\":\"transfer\",\"key\":\"payer\"}],\"within_s\":100},"
        " {\"id\":\"QS\",\"mode\":\"shadow\",\"sequence\":[{\"event\":\"call\",\"key\":\"callee\"},"
        "{\"event\":\"transfer\",\"key\":\"payer\"}],\"within_s\":100}]";
    const char *ev =
        "{\"event_id\":\"1\",\"type\":\"call\",\"ts\":1000,\"caller\":\"A\",\"callee\":\"V\"}\n"
        "{\"event_id\":\"2\",\"type\":\"call\",\"ts\":2000,\"caller\":\"A\",\"callee\":\"V\"}\n"
        "{\"event_id\":\"3\",\"type\":\"call\",\"ts\":3000,\"caller\":\"A\",\"callee\":\"W\"}\n"
        "{\"event_id\":\"4\",\"type\":\"transfer\",\"ts\":4000,\"payer\":\"V\"}\n"
        "{\"event_id\":\"5\",\"type\":\"call\",\"ts\":40000,\"caller\":\"A\",\"callee\":\"W\"}\n"
        "{\"event_id\":\"6\",\"type\":\"transfer\",\"ts\":5000,\"payer\":\"V\"}\n";
    for (uint32_t threads = 1; threads <= 3; threads += 2) {
        fwt_result res;
        run(rules, ev, threads, &res);
        /* L: 2 (fires), 3 suppressed, 5 fires (40000 >= 2000 + 30000) */
        assert_int_equal(fwt_count(&res, "L", NULL, NULL), 2);
        assert_int_equal(fwt_count(&res, "L", "A", "2"), 1);
        assert_int_equal(fwt_count(&res, "L", "A", "5"), 1);
        assert_int_equal(fwt_count(&res, "QL", "V", "4"), 1);
        assert_int_equal(fwt_count(&res, "QL", NULL, NULL), 1);   /* 6 suppressed */
        for (size_t i = 0; i < res.nalerts; i++) {
            const cJSON *a = res.alerts[i];
            const char *id = fwt_str(a, "rule_id");
            bool shadow = id[strlen(id) - 1] == 'S';
            assert_int_equal(flag(a, "shadow"), shadow);
            assert_false(flag(a, "snoozed"));
            assert_int_equal(res.to_shadow[i], shadow);
            if (!shadow)
                continue;
            /* its live twin fired on the same event */
            char twin[8];
            snprintf(twin, sizeof twin, "%.*s", (int)strlen(id) - 1, id);
            if (strcmp(twin, "Q") == 0)
                strcpy(twin, "QL");
            else
                strcpy(twin, "L");
            assert_int_equal(fwt_count(&res, twin, fwt_str(a, "subject"),
                                       fwt_str(a, "event_id")), 1);
        }
        assert_int_equal(fwt_count(&res, "S", NULL, NULL), 2);
        assert_int_equal(fwt_count(&res, "QS", NULL, NULL), 1);
        /* the counts say the same, per rule and mode */
        const fwt_tally *l = fwt_tally_of(&res, "L", "live"), *s = fwt_tally_of(&res, "S", "shadow");
        assert_non_null(l);
        assert_non_null(s);
        assert_null(fwt_tally_of(&res, "S", "live"));
        assert_int_equal(l->n[FW_RC_MATCHED], 4);
        assert_int_equal(s->n[FW_RC_MATCHED], 4);
        assert_int_equal(l->n[FW_RC_ALERTS], 2);
        assert_int_equal(s->n[FW_RC_ALERTS], 2);
        assert_int_equal(l->n[FW_RC_SUPPRESSED], 1);
        assert_int_equal(s->n[FW_RC_SUPPRESSED], 1);
        assert_int_equal(l->n[FW_RC_SHADOW], 0);
        assert_int_equal(s->n[FW_RC_SHADOW], 2);
        const fwt_tally *ql = fwt_tally_of(&res, "QL", NULL);
        assert_int_equal(ql->n[FW_RC_MATCHED], 6);     /* every event matches a step */
        assert_int_equal(ql->n[FW_RC_SUPPRESSED], 1);
        fwt_result_free(&res);
    }
}

/* A snoozed fire is counted, flagged, sent to the shadow output, and
 * starts the suppression exactly as a live alert would; the snooze ends at
 * ts == UNTIL. */
static void test_snooze_semantics(void **state)
{
    (void)state;
    fw_ruleset *rs = load(two_rules);
    /* P1 for A until 5000; every rule for B until 1000000. */
    fw_snoozes *sn = snoozes("P1\tA\t5000\treason\n*\tB\t1000000\n", rs);
    fw_ruleset_unref(rs);
    fwt_snoozes = sn;
    const char *ev =
        "{\"event_id\":\"1\",\"type\":\"call\",\"ts\":1000,\"caller\":\"A\",\"d\":20}\n"   /* P1 snoozed */
        "{\"event_id\":\"2\",\"type\":\"call\",\"ts\":4999,\"caller\":\"A\",\"d\":20}\n"   /* P1 suppressed */
        "{\"event_id\":\"3\",\"type\":\"call\",\"ts\":101000,\"caller\":\"A\",\"d\":20}\n" /* P1 live */
        "{\"event_id\":\"4\",\"type\":\"call\",\"ts\":2000,\"caller\":\"B\",\"d\":20}\n"   /* both snoozed */
        "{\"event_id\":\"5\",\"type\":\"call\",\"ts\":5000,\"caller\":\"C\",\"d\":20}\n";  /* live */
    for (uint32_t threads = 1; threads <= 4; threads += 3) {
        fwt_result res;
        run(two_rules, ev, threads, &res);
        /* The snoozed fire at 1000 suppressed the fire at 4999 (< 1000 +
         * 100 s): had it not, 4999 < UNTIL would have been snoozed too. */
        assert_int_equal(fwt_count(&res, "P1", "A", NULL), 2);
        const cJSON *a1 = fwt_find(&res, "P1", "1"), *a3 = fwt_find(&res, "P1", "3");
        assert_non_null(a1);
        assert_non_null(a3);
        assert_true(flag(a1, "snoozed"));
        assert_false(flag(a1, "shadow"));
        assert_false(flag(a3, "snoozed"));
        assert_null(fwt_find(&res, "P1", "2"));
        /* "*" snoozes every rule for B */
        assert_true(flag(fwt_find(&res, "P1", "4"), "snoozed"));
        assert_true(flag(fwt_find(&res, "P2", "4"), "snoozed"));
        /* P2 has no suppression: A fires at 1 and 2, unsnoozed (the snooze is P1's) */
        assert_false(flag(fwt_find(&res, "P2", "1"), "snoozed"));
        assert_false(flag(fwt_find(&res, "P2", "5"), "snoozed"));
        size_t to_shadow = 0;
        for (size_t i = 0; i < res.nalerts; i++)
            to_shadow += res.to_shadow[i];
        assert_int_equal(to_shadow, 3);
        const fwt_tally *p1 = fwt_tally_of(&res, "P1", "live");
        assert_int_equal(p1->n[FW_RC_MATCHED], 5);
        assert_int_equal(p1->n[FW_RC_ALERTS], 4);       /* 1, 3, 4, 5 */
        assert_int_equal(p1->n[FW_RC_SUPPRESSED], 1);   /* 2 */
        assert_int_equal(p1->n[FW_RC_SNOOZED], 2);      /* 1, 4 */
        assert_int_equal(p1->n[FW_RC_SHADOW], 2);
        fwt_result_free(&res);
    }

    /* The boundary: an event at ts == UNTIL is a live alert. */
    fw_snoozes_unref(sn);
    rs = load(two_rules);
    sn = snoozes("P2\tA\t1000\n", rs);
    fw_ruleset_unref(rs);
    fwt_snoozes = sn;
    fwt_result res;
    run(two_rules,
        "{\"event_id\":\"x\",\"type\":\"call\",\"ts\":999,\"caller\":\"A\",\"d\":20}\n"
        "{\"event_id\":\"y\",\"type\":\"call\",\"ts\":1000,\"caller\":\"A\",\"d\":20}\n", 1, &res);
    assert_true(flag(fwt_find(&res, "P2", "x"), "snoozed"));
    assert_false(flag(fwt_find(&res, "P2", "y"), "snoozed"));
    fwt_result_free(&res);
    fwt_snoozes = NULL;
    fw_snoozes_unref(sn);
}

/* A snoozed threshold alert: the window went on counting, the key's
 * suppression started; the same alert_id as without the snooze. */
static void test_snooze_keeps_ids_and_windows(void **state)
{
    (void)state;
    const char *rules = "[{\"id\":\"T\",\"event\":\"call\",\"threshold\":{\"group_by\":"
                        "\"caller\",\"window_s\":10,\"count\":{\">=\":2}},\"suppress_s\":5}]";
    const char *ev =
        "{\"event_id\":\"1\",\"type\":\"call\",\"ts\":1000,\"caller\":\"A\"}\n"
        "{\"event_id\":\"2\",\"type\":\"call\",\"ts\":2000,\"caller\":\"A\"}\n"   /* fires: snoozed */
        "{\"event_id\":\"3\",\"type\":\"call\",\"ts\":3000,\"caller\":\"A\"}\n"   /* suppressed */
        "{\"event_id\":\"4\",\"type\":\"call\",\"ts\":7000,\"caller\":\"A\"}\n";  /* count 4: fires */
    fwt_result plain, snoozed;
    run(rules, ev, 2, &plain);
    fw_ruleset *rs = load(rules);
    fwt_snoozes = snoozes("T\tA\t2001\n", rs);
    fw_ruleset_unref(rs);
    run(rules, ev, 2, &snoozed);
    fw_snoozes_unref(fwt_snoozes);
    fwt_snoozes = NULL;
    assert_int_equal(plain.nalerts, 2);
    assert_int_equal(snoozed.nalerts, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(fwt_str(plain.alerts[i], "alert_id"),
                            fwt_str(snoozed.alerts[i], "alert_id"));
        assert_true(fwt_num(plain.alerts[i], "evidence.count") ==
                    fwt_num(snoozed.alerts[i], "evidence.count"));
    }
    assert_true(flag(snoozed.alerts[0], "snoozed"));
    assert_false(flag(snoozed.alerts[1], "snoozed"));
    assert_true(fwt_num(snoozed.alerts[1], "evidence.count") == 4);
    fwt_result_free(&plain);
    fwt_result_free(&snoozed);
}

/* Regex limit hits are counted against the rule whose search hit them. */
static void test_faults_per_rule(void **state)
{
    (void)state;
    size_t n = 3000;
    char *text = malloc(n + 2);
    memset(text, 'a', n);
    text[n] = 'b';
    text[n + 1] = '\0';
    char *ev = fwt_events(
        "{\"event_id\":\"h\",\"type\":\"sms\",\"ts\":1,\"text\":\"%s\"}\n"
        "{\"event_id\":\"g\",\"type\":\"sms\",\"ts\":2,\"text\":\"aaa\"}\n", text);
    fwt_result res;
    run("[{\"id\":\"H\",\"event\":\"sms\",\"where\":[{\"field\":\"text\",\"regex\":\"^(a+)+$\"}]},"
        " {\"id\":\"OK\",\"event\":\"sms\",\"where\":[{\"field\":\"text\",\"regex\":\"a\"}]}]",
        ev, 1, &res);
    assert_int_equal(res.faults, 1);
    assert_int_equal(fwt_tally_of(&res, "H", NULL)->n[FW_RC_FAULTS], 1);
    assert_int_equal(fwt_tally_of(&res, "H", NULL)->n[FW_RC_MATCHED], 1);
    assert_int_equal(fwt_tally_of(&res, "OK", NULL)->n[FW_RC_FAULTS], 0);
    assert_int_equal(fwt_tally_of(&res, "OK", NULL)->n[FW_RC_MATCHED], 2);
    fwt_result_free(&res);
    free(ev);
    free(text);
}

/* The counts reach the Prometheus registry, one series per rule and mode,
 * summed over the workers. */
static void test_metrics_families(void **state)
{
    (void)state;
    fw_ruleset *rs = load(two_rules);
    fw_snoozes *sn = snoozes("P1\tA\t5000\n", rs);
    fw_metrics *m = fw_metrics_new();
    fw_mem_source *src = fw_mem_source_new();
    fw_mem_source_add_lines(src,
        "{\"event_id\":\"1\",\"type\":\"call\",\"ts\":1000,\"caller\":\"A\",\"d\":20}\n"
        "{\"event_id\":\"2\",\"type\":\"call\",\"ts\":2000,\"caller\":\"A\",\"d\":20}\n"
        "{\"event_id\":\"3\",\"type\":\"call\",\"ts\":3000,\"caller\":\"B\",\"d\":5}\n",
        0, UINT64_MAX);
    fwt_result res = { 0 };
    fwt_collector c = { .res = &res };
    fw_driver_opts o = { .pipeline = { .workers = 3, .batch_events = 1 },
                         .source = &fw_mem_source_ops, .source_self = src,
                         .sink = &fwt_collect_sink, .sink_self = &c, .rules = rs,
                         .snoozes = sn, .metrics = m };
    fw_driver *d = fw_driver_new(&o, err, sizeof err);
    assert_non_null(d);
    fw_driver_run(d, NULL);
    char *text = fw_metrics_render(m, NULL);
    const char *want[] = {
        "fraudwatch_rule_events_matched_total{rule=\"P1\",mode=\"live\"} 2\n",
        "fraudwatch_rule_alerts_total{rule=\"P1\",mode=\"live\"} 1\n",
        "fraudwatch_rule_suppressed_total{rule=\"P1\",mode=\"live\"} 1\n",
        "fraudwatch_rule_snoozed_total{rule=\"P1\",mode=\"live\"} 1\n",
        "fraudwatch_rule_shadow_alerts_total{rule=\"P1\",mode=\"live\"} 1\n",
        "fraudwatch_rule_alerts_total{rule=\"P2\",mode=\"live\"} 2\n",
        "fraudwatch_rule_snoozed_total{rule=\"P2\",mode=\"live\"} 0\n",
        "fraudwatch_rule_regex_faults_total{rule=\"P2\",mode=\"live\"} 0\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(text, want[i]))
            fail_msg("missing %s in:\n%s", want[i], text);
    free(text);
    fw_driver_free(d);
    fw_mem_source_free(src);
    fw_metrics_free(m);
    fw_snoozes_unref(sn);
    fw_ruleset_unref(rs);
    fwt_result_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_snooze_file),
        cmocka_unit_test(test_mode_member),
        cmocka_unit_test(test_shadow_fires_like_live),
        cmocka_unit_test(test_snooze_semantics),
        cmocka_unit_test(test_snooze_keeps_ids_and_windows),
        cmocka_unit_test(test_faults_per_rule),
        cmocka_unit_test(test_metrics_families),
    };
    fw_event_init();   /* events parsed into the batch arenas, as main() does */
    return cmocka_run_group_tests(tests, NULL, NULL);
}

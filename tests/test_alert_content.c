/* test_alert_content.c — what an officer reads on an alert (SPEC §3): the
 * rule members description / action / tags / alert_fields and their
 * errors, the event's fields (exact numbers, limits and cuts), what a
 * threshold counted (distinct values, largest sums, with their cuts), a
 * sequence's steps with their fields across a checkpoint, and checkpoints
 * of the earlier encodings (chains without fields, windows without event
 * ids), which still load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert_fields.h"
#include "codec.h"
#include "fraudwatch/event.h"
#include "fraudwatch/ruleset.h"
#include "harness.h"
#include "sequence.h"
#include "state.h"
#include "window.h"

/* ---- the rule members ---------------------------------------------------- */

static char *load(const char *json, fw_ruleset **keep)
{
    static char err[8192];
    fw_rulefile f = { "r.json", json, strlen(json) };
    fw_ruleset *rs = NULL;
    if (fw_ruleset_load_files(&f, 1, 1, &rs, err, sizeof err) == 0) {
        if (keep)
            *keep = rs;
        else
            fw_ruleset_unref(rs);
        return NULL;
    }
    return err;
}

static void expect_error(const char *json, const char *needle)
{
    char *err = load(json, NULL);
    if (!err)
        fail_msg("accepted: %s", json);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

#define RULE(body) "[{\"id\":\"R1\",\"event\":\"call\"" body "}]"

static char *repeat(const char *s, int n, const char *sep)
{
    size_t len = (strlen(s) + strlen(sep)) * (size_t)n + 1;
    char *out = calloc(1, len);
    for (int i = 0; i < n; i++) {
        strcat(out, i ? sep : "");
        strcat(out, s);
    }
    return out;
}

static void test_members_accepted(void **state)
{
    (void)state;
    fw_ruleset *rs = NULL;
    assert_null(load(RULE(",\"description\":\"来自涉诈号码\",\"action\":\"立即回拨\","
                          "\"tags\":[\"call\",\"涉诈\"],"
                          "\"alert_fields\":[\"caller\",\"payer.account\"]"), &rs));
    const fw_rule *r = &rs->rules[0];
    assert_string_equal(r->description, "来自涉诈号码");
    assert_string_equal(r->action, "立即回拨");
    assert_int_equal(r->ntags, 2);
    assert_string_equal(r->tags[1], "涉诈");
    assert_int_equal(r->nalert_fields, 2);
    assert_int_equal(r->alert_fields[1].nparts, 2);
    fw_ruleset_unref(rs);
}

static void test_member_errors(void **state)
{
    (void)state;
    expect_error(RULE(",\"alert_field\":[\"a\"]"), "r.json: rule R1: alert_field: unknown member");
    expect_error(RULE(",\"description\":5"), "rule R1: description: must be a string");
    expect_error(RULE(",\"action\":[\"call\"]"), "rule R1: action: must be a string");
    char *big = repeat("x", FW_RULE_TEXT_MAX + 1, "");
    char *json;
    assert_true(asprintf(&json, RULE(",\"action\":\"%s\""), big) > 0);
    expect_error(json, "action: is 4097 bytes, more than the limit of 4096");
    free(json);
    free(big);

    expect_error(RULE(",\"tags\":\"call\""), "tags: must be an array of at most 16 strings");
    char *tags = repeat("\"t\"", 17, ",");
    assert_true(asprintf(&json, RULE(",\"tags\":[%s]"), tags) > 0);
    expect_error(json, "tags: must be an array of at most 16 strings");
    free(json);
    free(tags);
    expect_error(RULE(",\"tags\":[\"a\",5]"), "tags[1]: must be a non-empty string of at most 64 bytes");
    expect_error(RULE(",\"tags\":[\"\"]"), "tags[0]: must be a non-empty string");
    expect_error(RULE(",\"tags\":[\"a\\nb\"]"), "tags[0]: must be a non-empty string");
    expect_error(RULE(",\"tags\":[\"a\",\"a\"]"), "tags[1]: \"a\" is listed twice");
    char *longtag = repeat("x", FW_RULE_TAG_MAX + 1, "");
    assert_true(asprintf(&json, RULE(",\"tags\":[\"%s\"]"), longtag) > 0);
    expect_error(json, "tags[0]: must be a non-empty string of at most 64 bytes");
    free(json);
    free(longtag);

    expect_error(RULE(",\"alert_fields\":\"caller\""), "alert_fields: must be an array of 1..32 field paths");
    expect_error(RULE(",\"alert_fields\":[]"), "alert_fields: must be an array of 1..32 field paths");
    expect_error(RULE(",\"alert_fields\":[\"caller\",\"payer..account\"]"),
                 "r.json: rule R1: alert_fields[1]: field path \"payer..account\" has an empty part");
    expect_error(RULE(",\"alert_fields\":[\"\"]"), "alert_fields[0]: must be a field name");
    expect_error(RULE(",\"alert_fields\":[\".a\"]"), "alert_fields[0]: field path \".a\" has an empty part");
    expect_error(RULE(",\"alert_fields\":[\"a.\"]"), "alert_fields[0]: field path \"a.\" has an empty part");
    expect_error(RULE(",\"alert_fields\":[7]"), "alert_fields[0]: must be a field name");
    expect_error(RULE(",\"alert_fields\":[\" caller\"]"), "alert_fields[0]: field path \" caller\" starts or ends with white space");
    expect_error(RULE(",\"alert_fields\":[\"a\\tb\"]"), "alert_fields[0]: field path \"a\tb\" has a control character");
    expect_error(RULE(",\"alert_fields\":[\"a\",\"b\",\"a\"]"), "alert_fields[2]: \"a\" is listed twice");
    char *paths = repeat("\"p\"", 33, ",");
    assert_true(asprintf(&json, RULE(",\"alert_fields\":[%s]"), paths) > 0);
    expect_error(json, "alert_fields: must be an array of 1..32 field paths");
    free(json);
    free(paths);
    char *longpath = repeat("x", FW_FIELD_PATH_MAX + 1, "");
    assert_true(asprintf(&json, RULE(",\"alert_fields\":[\"%s\"]"), longpath) > 0);
    expect_error(json, "alert_fields[0]: a field path is at most 256 bytes");
    free(json);
    free(longpath);
}

/* ---- the event's fields ------------------------------------------------------ */

/* fields of one event under one rule: the text fw_fields_render writes. */
static char *fields_of(const char *rule_json, const char *event)
{
    fw_ruleset *rs = NULL;
    char *err = load(rule_json, &rs);
    if (err)
        fail_msg("%s", err);
    fw_event ev;
    const char *why;
    if (!fw_event_parse(event, strlen(event), 1 << 20, &ev, &why))
        fail_msg("event: %s", why);
    fw_buf out = { 0 };
    fw_fields_render(&out, &ev, &rs->rules[0]);
    fw_buf_putc(&out, '\0');
    fw_event_release(&ev);
    fw_ruleset_unref(rs);
    return out.p;
}

static void expect_fields(const char *rule_json, const char *event, const char *want)
{
    char *got = fields_of(rule_json, event);
    if (strcmp(got, want) != 0)
        fail_msg("fields\n  got  %s\n  want %s", got, want);
    free(got);
}

static void test_fields_exact(void **state)
{
    (void)state;
    /* Numbers as written (not as a double would print them); strings,
     * booleans; null, objects and arrays are not top-level values shown; a
     * repeated name shows its first value. */
    expect_fields(RULE(""),
                  "\xEF\xBB\xBF {\"event_id\":\"e1\", \"type\" : \"call\",\"ts\":1700000000000,"
                  "\"acct\":6222021234567890123,\"amount\":49999.990,\"e\":1E+3,\"z\":-0,"
                  "\"ok\":true,\"no\":false,\"n\":null,\"o\":{\"a\":1},\"arr\":[1,\"]\"],"
                  "\"t\":\"\\\"quoted\\\" 中文\",\"amount\":1}",
                  "\"fields\":{\"event_id\":\"e1\",\"type\":\"call\",\"ts\":1700000000000,"
                  "\"acct\":6222021234567890123,\"amount\":49999.990,\"e\":1E+3,\"z\":-0,"
                  "\"ok\":true,\"no\":false,\"t\":\"\\\"quoted\\\" 中文\"}");
    /* cJSON reads "01" and "1." too; not JSON numbers, so their shortest form. */
    expect_fields(RULE(""),
                  "{\"event_id\":\"e1\",\"type\":\"call\",\"ts\":1,\"a\":01,\"b\":1.}",
                  "\"fields\":{\"event_id\":\"e1\",\"type\":\"call\",\"ts\":1,\"a\":1,\"b\":1}");
    /* alert_fields: in the rule's order, keyed by the path; nested numbers
     * exact; missing paths and objects left out. */
    expect_fields(RULE(",\"alert_fields\":[\"payer.account\",\"missing\",\"payer\",\"amount\",\"type\"]"),
                  "{\"event_id\":\"e1\",\"type\":\"transfer\",\"ts\":1,\"amount\":5000.50,"
                  "\"payer\":{\"name\":\"x\",\"account\":6222021234567890123}}",
                  "\"fields\":{\"payer.account\":6222021234567890123,\"amount\":5000.50,"
                  "\"type\":\"transfer\"}");
    /* Top-level paths only: in the event's order (rules selecting the same
     * values share one text). */
    expect_fields(RULE(",\"alert_fields\":[\"amount\",\"event_id\",\"nope\"]"),
                  "{\"event_id\":\"e1\",\"type\":\"t\",\"ts\":1,\"amount\":1.50}",
                  "\"fields\":{\"event_id\":\"e1\",\"amount\":1.50}");
    /* The same name twice in a nested object: the first, as rules read it. */
    expect_fields(RULE(",\"alert_fields\":[\"p.a\"]"),
                  "{\"event_id\":\"e1\",\"type\":\"t\",\"ts\":1,\"p\":{\"a\":1.10,\"a\":2}}",
                  "\"fields\":{\"p.a\":1.10}");
}

static void test_fields_cut(void **state)
{
    (void)state;
    /* More than FW_FIELDS_MAX top-level values: the first 32, and a cut. */
    fw_buf ev = { 0 };
    fw_buf_puts(&ev, "{\"event_id\":\"e1\",\"type\":\"x\",\"ts\":1");
    for (int i = 0; i < 40; i++)
        fw_buf_printf(&ev, ",\"f%d\":%d", i, i);
    fw_buf_puts(&ev, "}");
    fw_buf_putc(&ev, '\0');
    char *got = fields_of(RULE(""), ev.p);
    assert_non_null(strstr(got, "\"f28\":28}"));
    assert_null(strstr(got, "\"f29\""));
    assert_non_null(strstr(got, "},\"fields_cut\":true"));
    free(got);
    /* Exactly 32: no cut. */
    ev.len = 0;
    fw_buf_puts(&ev, "{\"event_id\":\"e1\",\"type\":\"x\",\"ts\":1");
    for (int i = 0; i < 29; i++)
        fw_buf_printf(&ev, ",\"f%d\":%d", i, i);
    fw_buf_puts(&ev, ",\"o\":{}}");
    fw_buf_putc(&ev, '\0');
    got = fields_of(RULE(""), ev.p);
    assert_null(strstr(got, "fields_cut"));
    free(got);

    /* A string longer than FW_FIELD_TEXT_MAX: cut at a character. */
    char *zh = repeat("中", 100, "");     /* 300 bytes */
    ev.len = 0;
    fw_buf_printf(&ev, "{\"event_id\":\"e1\",\"type\":\"x\",\"ts\":1,\"text\":\"%s\"}", zh);
    fw_buf_putc(&ev, '\0');
    got = fields_of(RULE(",\"alert_fields\":[\"text\"]"), ev.p);
    char *want = repeat("中", 85, "");    /* 255 bytes: 256 would split one */
    char *expect;
    assert_true(asprintf(&expect, "\"fields\":{\"text\":\"%s\"},\"fields_cut\":true", want) > 0);
    assert_string_equal(got, expect);
    free(expect);
    free(want);
    free(got);
    free(zh);

    /* The whole object at most FW_FIELDS_BYTES_MAX: later values left out. */
    char *s200 = repeat("y", 200, "");
    ev.len = 0;
    fw_buf_puts(&ev, "{\"event_id\":\"e1\",\"type\":\"x\",\"ts\":1");
    for (int i = 0; i < 25; i++)
        fw_buf_printf(&ev, ",\"s%02d\":\"%s\"", i, s200);
    fw_buf_puts(&ev, "}");
    fw_buf_putc(&ev, '\0');
    got = fields_of(RULE(""), ev.p);
    char *end = strstr(got, "},\"fields_cut\":true");
    assert_non_null(end);
    assert_true((size_t)(end + 1 - strchr(got, '{')) <= FW_FIELDS_BYTES_MAX);
    assert_non_null(strstr(got, "\"s17\":"));
    assert_null(strstr(got, "\"s19\":"));
    free(got);
    free(s200);

    /* More than 256 top-level members (a hostile event): default fields
     * from the first ones, cut; an alert_fields path past them still found. */
    ev.len = 0;
    fw_buf_puts(&ev, "{\"event_id\":\"e1\",\"type\":\"x\",\"ts\":1");
    for (int i = 0; i < 300; i++)
        fw_buf_printf(&ev, ",\"o%d\":{}", i);
    fw_buf_puts(&ev, ",\"late\":12.50}");
    fw_buf_putc(&ev, '\0');
    got = fields_of(RULE(""), ev.p);
    assert_string_equal(got, "\"fields\":{\"event_id\":\"e1\",\"type\":\"x\",\"ts\":1},"
                             "\"fields_cut\":true");
    free(got);
    got = fields_of(RULE(",\"alert_fields\":[\"late\",\"type\"]"), ev.p);
    assert_string_equal(got, "\"fields\":{\"late\":12.50,\"type\":\"x\"}");
    free(got);
    fw_buf_free(&ev);
}

/* ---- alerts through the engine -------------------------------------------- */

static void test_alert_members(void **state)
{
    (void)state;
    const char *rules =
        "[{\"id\":\"P1\",\"event\":\"call\",\"description\":\"描述\",\"action\":\"行动\","
        "\"tags\":[\"a\",\"b\"],\"alert_fields\":[\"callee\"]},"
        " {\"id\":\"P2\",\"event\":\"call\"}]";
    const char *events =
        "{\"event_id\":\"e1\",\"type\":\"call\",\"ts\":1700000000000,\"caller\":\"c1\",\"callee\":\"v1\"}\n";
    for (uint32_t threads = 1; threads <= 3; threads += 2) {
        fwt_result res;
        char err[512];
        assert_int_equal(fwt_run(rules, NULL, events, threads, &res, err, sizeof err), 0);
        assert_int_equal(res.nalerts, 2);
        const cJSON *a = fwt_find(&res, "P1", "e1");
        assert_string_equal(fwt_str(a, "description"), "描述");
        assert_string_equal(fwt_str(a, "action"), "行动");
        const cJSON *tags = cJSON_GetObjectItemCaseSensitive(a, "tags");
        assert_int_equal(cJSON_GetArraySize(tags), 2);
        assert_string_equal(cJSON_GetArrayItem(tags, 1)->valuestring, "b");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(a, "fields");
        assert_int_equal(cJSON_GetArraySize(f), 1);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(f, "callee")->valuestring, "v1");
        /* No members of its own: no description, action, tags; the
         * top-level values. */
        const cJSON *b = fwt_find(&res, "P2", "e1");
        assert_null(cJSON_GetObjectItemCaseSensitive(b, "description"));
        assert_null(cJSON_GetObjectItemCaseSensitive(b, "action"));
        assert_null(cJSON_GetObjectItemCaseSensitive(b, "tags"));
        f = cJSON_GetObjectItemCaseSensitive(b, "fields");
        assert_int_equal(cJSON_GetArraySize(f), 5);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(f, "caller")->valuestring, "c1");
        fwt_result_free(&res);
    }
}

static void test_distinct_values_cut(void **state)
{
    (void)state;
    /* 25 distinct callees, the 25th fires: the 20 most recently seen,
     * newest first, and a cut. */
    const char *rules =
        "[{\"id\":\"D1\",\"event\":\"call\",\"threshold\":{\"group_by\":\"caller\","
        "\"window_s\":600,\"distinct\":{\"field\":\"callee\",\">=\":25}}}]";
    fw_buf ev = { 0 };
    for (int i = 1; i <= 25; i++)
        fw_buf_printf(&ev, "{\"event_id\":\"e%d\",\"type\":\"call\",\"ts\":%d,"
                           "\"caller\":\"C\",\"callee\":\"v%02d\"}\n", i, 1000 * i, i);
    fw_buf_putc(&ev, '\0');
    fwt_result res;
    char err[512];
    assert_int_equal(fwt_run(rules, NULL, ev.p, 2, &res, err, sizeof err), 0);
    assert_int_equal(res.nalerts, 1);
    const cJSON *a = fwt_find(&res, "D1", "e25");
    assert_non_null(a);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(a, "evidence");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "values");
    assert_int_equal(cJSON_GetArraySize(v), 20);
    assert_string_equal(cJSON_GetArrayItem(v, 0)->valuestring, "v25");
    assert_string_equal(cJSON_GetArrayItem(v, 19)->valuestring, "v06");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "values_cut")));
    fwt_result_free(&res);

    /* 20 or fewer: every value, no cut; a value seen twice listed once, at
     * its latest place. */
    const char *small =
        "[{\"id\":\"D2\",\"event\":\"call\",\"threshold\":{\"group_by\":\"caller\","
        "\"window_s\":600,\"distinct\":{\"field\":\"callee\",\">=\":3}}}]";
    const char *evs =
        "{\"event_id\":\"a1\",\"type\":\"call\",\"ts\":1,\"caller\":\"C\",\"callee\":\"x\"}\n"
        "{\"event_id\":\"a2\",\"type\":\"call\",\"ts\":2,\"caller\":\"C\",\"callee\":\"y\"}\n"
        "{\"event_id\":\"a3\",\"type\":\"call\",\"ts\":3,\"caller\":\"C\",\"callee\":\"x\"}\n"
        "{\"event_id\":\"a4\",\"type\":\"call\",\"ts\":4,\"caller\":\"C\",\"callee\":100.0}\n";
    assert_int_equal(fwt_run(small, NULL, evs, 1, &res, err, sizeof err), 0);
    assert_int_equal(res.nalerts, 1);
    e = cJSON_GetObjectItemCaseSensitive(fwt_find(&res, "D2", "a4"), "evidence");
    v = cJSON_GetObjectItemCaseSensitive(e, "values");
    assert_int_equal(cJSON_GetArraySize(v), 3);
    assert_string_equal(cJSON_GetArrayItem(v, 0)->valuestring, "100");
    assert_string_equal(cJSON_GetArrayItem(v, 1)->valuestring, "x");
    assert_string_equal(cJSON_GetArrayItem(v, 2)->valuestring, "y");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(e, "values_cut")));
    fwt_result_free(&res);
    fw_buf_free(&ev);
}

static void test_sum_largest_cut(void **state)
{
    (void)state;
    const char *rules =
        "[{\"id\":\"S1\",\"event\":\"transfer\",\"threshold\":{\"group_by\":\"payee\","
        "\"window_s\":600,\"sum\":{\"field\":\"amount\",\">=\":1000}}}]";
    /* t7 arrives late (ts before t6): the window of t7 is (m − W, ts(t7)],
     * so t6 is not part of it. */
    const char *evs =
        "{\"event_id\":\"t1\",\"type\":\"transfer\",\"ts\":1000,\"payee\":\"P\",\"amount\":100}\n"
        "{\"event_id\":\"t2\",\"type\":\"transfer\",\"ts\":2000,\"payee\":\"P\",\"amount\":300.5}\n"
        "{\"event_id\":\"t3\",\"type\":\"transfer\",\"ts\":3000,\"payee\":\"P\",\"amount\":50}\n"
        "{\"event_id\":\"t4\",\"type\":\"transfer\",\"ts\":4000,\"payee\":\"P\",\"amount\":300.5}\n"
        "{\"event_id\":\"t5\",\"type\":\"transfer\",\"ts\":5000,\"payee\":\"P\",\"amount\":20}\n"
        "{\"event_id\":\"t6\",\"type\":\"transfer\",\"ts\":9000,\"payee\":\"P\",\"amount\":-10}\n"
        "{\"event_id\":\"t7\",\"type\":\"transfer\",\"ts\":8000,\"payee\":\"P\",\"amount\":250}\n";
    fwt_result res;
    char err[512];
    assert_int_equal(fwt_run(rules, NULL, evs, 2, &res, err, sizeof err), 0);
    assert_int_equal(res.nalerts, 1);
    const cJSON *a = fwt_find(&res, "S1", "t7");
    assert_non_null(a);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(a, "evidence");
    assert_true(fwt_num(a, "evidence.sum") == 1021);
    assert_int_equal((int)fwt_num(a, "evidence.events"), 6);
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(e, "largest");
    assert_int_equal(cJSON_GetArraySize(l), 5);
    const char *ids[] = { "t2", "t4", "t7", "t1", "t3" };
    const double vals[] = { 300.5, 300.5, 250, 100, 50 };
    for (int i = 0; i < 5; i++) {
        const cJSON *x = cJSON_GetArrayItem(l, i);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(x, "event_id")->valuestring, ids[i]);
        assert_true(cJSON_GetObjectItemCaseSensitive(x, "value")->valuedouble == vals[i]);
    }
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "largest_cut")));
    fwt_result_free(&res);
}

/* ---- sequences: each step's fields, kept with the chain ------------------- */

static const char SEQ[] =
    "[{\"id\":\"Q1\",\"alert_fields\":[\"caller\",\"amount\",\"payee_account\"],"
    "\"sequence\":[{\"event\":\"call\",\"key\":\"callee\"},"
    "{\"event\":\"sms\",\"key\":\"recipient\"},"
    "{\"event\":\"transfer\",\"key\":\"payer_phone\"}],\"within_s\":600}]";
static const char SEQ_EVENTS[] =
    "{\"event_id\":\"c1\",\"type\":\"call\",\"ts\":1000,\"caller\":\"0085290001234\",\"callee\":\"V\"}\n"
    "{\"event_id\":\"s1\",\"type\":\"sms\",\"ts\":2000,\"sender\":\"x\",\"recipient\":\"V\"}\n"
    "{\"event_id\":\"t1\",\"type\":\"transfer\",\"ts\":3000,\"payer_phone\":\"V\","
    "\"amount\":20000.00,\"payee_account\":\"6222000011112222\"}\n";

static void check_seq_alert(const fwt_result *res)
{
    assert_int_equal(res->nalerts, 1);
    const cJSON *a = fwt_find(res, "Q1", "t1");
    assert_non_null(a);
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(a, "evidence"), "steps");
    assert_int_equal(cJSON_GetArraySize(steps), 3);
    const cJSON *f1 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(steps, 0), "fields");
    const cJSON *f2 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(steps, 1), "fields");
    const cJSON *f3 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(steps, 2), "fields");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f1, "caller")->valuestring, "0085290001234");
    assert_int_equal(cJSON_GetArraySize(f1), 1);
    assert_int_equal(cJSON_GetArraySize(f2), 0);
    assert_true(cJSON_GetObjectItemCaseSensitive(f3, "amount")->valuedouble == 20000);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f3, "payee_account")->valuestring,
                        "6222000011112222");
    /* The alert's own fields are the last step's. */
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(a, "fields");
    assert_int_equal(cJSON_GetArraySize(f), 2);
}

static void test_sequence_step_fields(void **state)
{
    (void)state;
    fwt_result res;
    char err[512];
    assert_int_equal(fwt_run(SEQ, NULL, SEQ_EVENTS, 3, &res, err, sizeof err), 0);
    check_seq_alert(&res);
    fwt_result_free(&res);
    /* A checkpoint after each step: the chain's fields come back. */
    for (uint64_t split = 1; split <= 2; split++) {
        assert_int_equal(fwt_run_checkpointed(SEQ, SEQ_EVENTS, split, 1, 2, &res, err,
                                              sizeof err), 0);
        check_seq_alert(&res);
        fwt_result_free(&res);
    }
}

/* ---- checkpoints of the earlier encodings still load -------------------- */

static fw_state *the_state;
static fw_state *place_one(void *ctx, uint64_t khash)
{
    (void)ctx;
    (void)khash;
    return the_state;
}

/* One item as state.c writes it, with `flags` and the kind's bytes. */
static void enc_item(fw_buf *b, uint64_t sig, const char *key, int64_t m, int64_t life,
                     int64_t suppress, uint64_t flags)
{
    fw_enc_u64(b, sig);
    fw_enc_u64(b, fw_hash64(key, strlen(key), sig));
    fw_enc_u64(b, (uint64_t)m);
    fw_enc_u64(b, (uint64_t)INT64_MIN);   /* never fired */
    fw_enc_u64(b, (uint64_t)life);
    fw_enc_u64(b, (uint64_t)suppress);
    fw_enc_u64(b, flags);
    fw_enc_bytes(b, key, (uint32_t)strlen(key));
}

static char *apply_after_load(const char *rules, const fw_buf *ckpt, fw_update u)
{
    fw_ruleset *rs = NULL;
    char *lerr = load(rules, &rs);
    if (lerr)
        fail_msg("%s", lerr);
    the_state = fw_state_new();
    FILE *f = fmemopen(ckpt->p, ckpt->len, "rb");
    char err[256];
    assert_int_equal(fw_state_load(f, place_one, NULL, err, sizeof err), 0);
    fclose(f);
    assert_int_equal(fw_state_keys(the_state), 1);
    u.khash = fw_hash64(u.key, u.klen, rs->rules[0].state_sig);
    fw_alert_out out = { 0 };
    fw_state_apply(the_state, rs, &u, &out);
    char *text = out.n ? strndup(out.text.p + out.refs[0].off, out.refs[0].len) : NULL;
    fw_buf_free(&out.text);
    free(out.refs);
    fw_state_free(the_state);
    fw_ruleset_unref(rs);
    return text;
}

static void test_old_chain_checkpoint(void **state)
{
    (void)state;
    const char *rules = "[{\"id\":\"Q2\",\"sequence\":[{\"event\":\"call\",\"key\":\"callee\"},"
                        "{\"event\":\"transfer\",\"key\":\"payer_phone\"}],\"within_s\":600}]";
    fw_ruleset *rs = NULL;
    assert_null(load(rules, &rs));
    uint64_t sig = rs->rules[0].state_sig;
    fw_ruleset_unref(rs);
    /* flag 2: nsteps, then c and the chain (ts, event id) — no fields. */
    fw_buf b = { 0 };
    fw_enc_u64(&b, 1);
    enc_item(&b, sig, "V", 1000, 600000, 600000, 2);
    fw_enc_u64(&b, 2);
    fw_enc_u64(&b, 1000);
    fw_enc_u64(&b, 1);
    fw_enc_u64(&b, 1000);
    fw_enc_bytes(&b, "c-old", 5);
    static const char fields[] = "\"fields\":{\"amount\":5000}";
    fw_update u = { .rule = 0, .step = 1, .ts = 2000, .key = "V", .klen = 1,
                    .event_id = "t9", .event_id_len = 2,
                    .fields = fields, .fields_len = sizeof fields - 1 };
    char *alert = apply_after_load(rules, &b, u);
    assert_non_null(alert);
    /* The restored step has no fields (not known); the new one has them. */
    assert_non_null(strstr(alert, "\"steps\":[{\"step\":1,\"event_id\":\"c-old\",\"ts\":1000},"
                                  "{\"step\":2,\"event_id\":\"t9\",\"ts\":2000,"
                                  "\"fields\":{\"amount\":5000}}]"));
    free(alert);
    fw_buf_free(&b);
}

static void test_old_window_checkpoint(void **state)
{
    (void)state;
    const char *rules = "[{\"id\":\"S2\",\"event\":\"transfer\",\"threshold\":{\"group_by\":\"p\","
                        "\"window_s\":600,\"sum\":{\"field\":\"amount\",\">=\":300}}}]";
    fw_ruleset *rs = NULL;
    assert_null(load(rules, &rs));
    uint64_t sig = rs->rules[0].state_sig;
    fw_ruleset_unref(rs);
    /* flag 1: n, distinct?, n × (ts, micro) — no event ids. */
    fw_buf b = { 0 };
    fw_enc_u64(&b, 1);
    enc_item(&b, sig, "P", 2000, 600000, 600000, 1);
    fw_enc_u64(&b, 2);
    fw_enc_u64(&b, 0);
    fw_enc_u64(&b, 1000);
    fw_enc_u64(&b, 100000000);     /* 100 */
    fw_enc_u64(&b, 2000);
    fw_enc_u64(&b, 150000000);     /* 150 */
    fw_update u = { .rule = 0, .ts = 3000, .key = "P", .klen = 1,
                    .event_id = "t3", .event_id_len = 2, .vkind = 1, .micro = 120000000 };
    char *alert = apply_after_load(rules, &b, u);
    assert_non_null(alert);
    assert_non_null(strstr(alert, "\"sum\":370,"));
    assert_non_null(strstr(alert, "\"events\":3,\"largest\":[{\"event_id\":null,\"value\":150},"
                                  "{\"event_id\":\"t3\",\"value\":120},"
                                  "{\"event_id\":null,\"value\":100}],\"largest_cut\":false"));
    free(alert);
    fw_buf_free(&b);
}

int main(void)
{
    fw_event_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members_accepted),
        cmocka_unit_test(test_member_errors),
        cmocka_unit_test(test_fields_exact),
        cmocka_unit_test(test_fields_cut),
        cmocka_unit_test(test_alert_members),
        cmocka_unit_test(test_distinct_values_cut),
        cmocka_unit_test(test_sum_largest_cut),
        cmocka_unit_test(test_sequence_step_fields),
        cmocka_unit_test(test_old_chain_checkpoint),
        cmocka_unit_test(test_old_window_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

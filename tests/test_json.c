/* test_json.c — the event parser (src/event_json.c) against cJSON 1.7.15.
 *
 * fw_json_parse() must accept exactly what cJSON_ParseWithLengthOpts()
 * accepts, stop at the same byte and build the same tree: node for node the
 * same types, keys, strings (every byte up to the NUL), numbers bit for bit,
 * valueint, order, and cJSON's prev links; and its UTF-8 verdict must be
 * fw_utf8_valid's over the bytes it read.  Checked on hand-written edge
 * cases (each of cJSON's quirks), on every input of the fuzz corpus and its
 * regressions, on the golden cases' events, and on 200,000 seeded random
 * mutations of them; with and without an arena. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event_json.h"
#include "harness.h"
#include "fraudwatch/event.h"
#include "fraudwatch/text.h"
#include "json_diff.h"

typedef struct {
    char *data;
    size_t len;
} blob;

static blob *inputs;
static size_t n_inputs, cap_inputs;

static void add_input(const char *d, size_t len)
{
    if (n_inputs == cap_inputs) {
        cap_inputs = cap_inputs ? cap_inputs * 2 : 256;
        inputs = realloc(inputs, cap_inputs * sizeof *inputs);
        assert_non_null(inputs);
    }
    char *c = malloc(len ? len : 1);
    assert_non_null(c);
    memcpy(c, d, len);
    inputs[n_inputs++] = (blob){ c, len };
}

/* One input through both parsers, malloc'd and in an arena. */
static void check_one_at(const char *d, size_t len, fw_arena *arena);

/* Each input is parsed from a heap copy of exactly its length, so that a
 * read one byte past the message is AddressSanitizer's to see (the
 * parser's fast paths load sixteen bytes at a time). */
static void check_one(const char *d, size_t len, fw_arena *arena)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, d, len);
    check_one_at(copy, len, arena);
    free(copy);
}

static void check_one_at(const char *d, size_t len, fw_arena *arena)
{
    const char *end_c = NULL, *end_f = NULL;
    cJSON *c = len ? cJSON_ParseWithLengthOpts(d, len, &end_c, 0) : NULL;
    bool utf8 = true;
    cJSON *f = fw_json_parse(d, len, NULL, &end_f, &utf8);
    if ((c == NULL) != (f == NULL))
        fail_msg("cJSON %s, fw_json_parse %s: \"%.*s\"", c ? "accepts" : "refuses",
                 f ? "accepts" : "refuses", (int)(len > 200 ? 200 : len), d);
    if (c) {
        if (end_c != end_f)
            fail_msg("end at %td vs %td: \"%.*s\"", end_c - d, end_f - d,
                     (int)(len > 200 ? 200 : len), d);
        const char *why = fw_json_tree_diff(c, f);
        if (why)
            fail_msg("trees differ (%s): \"%.*s\"", why, (int)(len > 200 ? 200 : len), d);
        /* The UTF-8 check that rides along: exactly the bytes it read. */
        if (utf8 != fw_utf8_valid(d, (size_t)(end_f - d)))
            fail_msg("utf8 %d for \"%.*s\"", utf8, (int)(len > 200 ? 200 : len), d);
    } else {
        assert_false(utf8);
    }
    fw_event_use_arena(arena);
    const char *end_a = NULL;
    cJSON *fa = fw_json_parse(d, len, arena, &end_a, NULL);
    fw_event_use_arena(NULL);
    assert_true((fa == NULL) == (c == NULL));
    if (c) {
        assert_ptr_equal(end_a, end_c);
        const char *why = fw_json_tree_diff(c, fa);
        if (why)
            fail_msg("arena tree differs (%s): \"%.*s\"", why, (int)(len > 200 ? 200 : len), d);
    }
    fw_arena_reset(arena);
    cJSON_Delete(c);
    cJSON_Delete(f);
}

#define S(lit) lit, sizeof(lit) - 1

static const struct {
    const char *d;
    size_t len;
} edge[] = {
    { S("{\"event_id\":\"e1\",\"type\":\"call\",\"ts\":1700000000000}") },
    { S("") },
    { S(" ") },
    { S("{") },
    { S("}") },
    { S("{}") },
    { S("[]") },
    { S("[1,2,3]") },
    { S("[1,2,]") },
    { S("{\"a\":1,}") },
    { S("{\"a\":1,") },
    { S("{\"a\" 1}") },
    { S("{\"a\":}") },
    { S("{a:1}") },
    { S("{\"a\":1}   ") },
    { S("{\"a\":1} x") },
    { S("\xEF\xBB\xBF{\"a\":1}") },
    { S("\xEF\xBB\xBF{}") },                 /* BOM with 2 more bytes: len 5 */
    { S("\xEF\xBB\xBF{") },                  /* len 4: cJSON does not skip it */
    { S("\x01\x02{\"a\":\x1f 1\x7f}") },     /* bytes <= 32 are whitespace; 127 is not */
    { S("\x01\x02{\"a\":\x1f 1}\x00") },
    { S("{!\"a\":1}") },                    /* 33 is not whitespace */
    { S("[1,!2]") },
    { S("[1 ,\x80 2]") },
    { S("null") },
    { S("nul") },
    { S("nulll") },
    { S("true") },
    { S("tru") },
    { S("false") },
    { S("fals") },
    { S("{\"a\":null,\"b\":true,\"c\":false}") },
    { S("{\"a\":nulx}") },
    /* numbers */
    { S("0") },
    { S("-0") },
    { S("-") },
    { S("--1") },
    { S("-+1") },
    { S("+1") },
    { S("01") },
    { S("00000000000000000001") },
    { S("1.") },
    { S(".5") },
    { S("1.5") },
    { S("1e5") },
    { S("1E+5") },
    { S("1e") },
    { S("1e+") },
    { S("1-2") },
    { S("1.2.3") },
    { S("123456789012345") },
    { S("1234567890123456") },
    { S("12345678901234567890") },
    { S("-999999999999999") },
    { S("9007199254740993") },
    { S("2147483647") },
    { S("2147483648") },
    { S("-2147483648") },
    { S("-2147483649") },
    { S("1e400") },
    { S("-1e400") },
    { S("1e-400") },
    { S("0.1") },
    { S("1x") },
    { S("0x10") },
    { S("[1,-]") },
    { S("{\"n\":12345678901234567890123456789012345678901234567890123456789012345678901234567890}") },
    { S("{\"n\":1.00000000000000000000000000000000000000000000000000000000000000000001}") },
    { S("{\"ts\":1700000000000,\"amount\":12.5,\"x\":-3}") },
    /* strings */
    { S("\"abc\"") },
    { S("\"abc") },
    { S("\"a\\\"b\"") },
    { S("\"a\\\\\"") },
    { S("\"\\/\\b\\f\\n\\r\\t\"") },
    { S("\"\\x\"") },
    { S("\"\\") },
    { S("\"\\\"") },
    { S("\"\\u0041\"") },
    { S("\"\\u00e9\\u4e2d\"") },
    { S("\"\\u0000abc\"") },
    { S("\"\\uzzzz\"") },
    { S("\"\\u12\"") },
    { S("\"\\u123\"") },
    { S("\"\\ud83d\\ude00\"") },
    { S("\"\\ud83d\"") },
    { S("\"\\ud83d\\u0041\"") },
    { S("\"\\ud83dx\\ude00\"") },
    { S("\"\\ude00\"") },
    { S("\"\\uDBFF\\uDFFF\"") },
    { S("\"raw\x01\x1f control\"") },
    { S("\"nul\x00inside\"") },
    { S("\"中文短信内容，请点击链接\"") },
    { S("\"中文短信内容，请点击链接中文短信内容，请点击链接\xe4\xb8\"") },   /* cut sequence */
    { S("{\"a\":\"\xc3\xa9\",\"b\":\"\xed\xa0\x80\"}") },            /* a surrogate */
    { S("{\"0123456789abcdef\":\"\xff\"}") },
    { S("{\"k\\u0000ey\":1}") },
    { S("{\"a\":1,\"a\":2}") },
    { S("{\"\":\"\"}") },
    { S("{\"a\":[{\"b\":[{}]},[],{}],\"c\":{\"d\":{\"e\":\"f\"}}}") },
    { S("{\"a\" : [ 1 , 2 ] , \"b\" : { } }") },
    { S("[\"0123456789abcdef0123456789abcdef\\\"\",\"x\"]") },
};

static void test_edge_cases(void **state)
{
    (void)state;
    fw_arena *a = fw_arena_new(4096);
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        check_one(edge[i].d, edge[i].len, a);
        /* Each one cut short at every length, too. */
        for (size_t k = 0; k < edge[i].len; k++)
            check_one(edge[i].d, k, a);
    }
    fw_arena_free(a);
}

/* Strings around the sixteen bytes the parser's fast path reads at once:
 * every length 0..40, as a member name and as a value, plain or with one
 * special byte (an escaped quote, a backslash escape, a byte outside ASCII,
 * a raw NUL, a control byte) at every position, with the closing quote at,
 * before and after byte 16 and the message ending right after it or later.
 * Each compared with cJSON, tree for tree. */
static void test_short_strings(void **state)
{
    (void)state;
    static const char *const special[] = { "", "\\\"", "\\n", "\\u00e9", "\xc3\xa9",
                                           "\xe4\xb8\xad", "\xff", "\x01", "\\\\" };
    fw_arena *a = fw_arena_new(4096);
    char str[128], msg[512];
    for (size_t len = 0; len <= 40; len++)
        for (size_t k = 0; k < sizeof special / sizeof special[0]; k++)
            for (size_t at = 0; at <= len; at++) {
                if (!special[k][0] && at)
                    break;                       /* plain: one string per length */
                size_t n = 0;
                for (size_t i = 0; i < len; i++) {
                    if (i == at && special[k][0]) {
                        size_t sl = strlen(special[k]);
                        memcpy(str + n, special[k], sl);
                        n += sl;
                    }
                    str[n++] = (char)('a' + i % 26);
                }
                if (at == len && special[k][0]) {
                    size_t sl = strlen(special[k]);
                    memcpy(str + n, special[k], sl);
                    n += sl;
                }
                /* the raw NUL case: "\x00" cannot be a C string piece */
                str[n] = '\0';
                int m = snprintf(msg, sizeof msg, "{\"%s\":\"%s\"}", str, str);
                assert_true(m > 0 && (size_t)m < sizeof msg);
                check_one(msg, (size_t)m, a);
                m = snprintf(msg, sizeof msg, "{\"%s\":\"%s\",\"pad\":\"0123456789abcdef\"}", str,
                             str);
                assert_true(m > 0 && (size_t)m < sizeof msg);
                check_one(msg, (size_t)m, a);
                /* a raw NUL inside the string, where the special byte is */
                if (k == 0) {
                    int q = snprintf(msg, sizeof msg, "[\"%s", str);
                    assert_true(q > 0);
                    msg[q++] = '\0';
                    q += snprintf(msg + q, sizeof msg - (size_t)q, "%s\",\"0123456789abcdef\"]",
                                  str);
                    check_one(msg, (size_t)q, a);
                }
            }
    fw_arena_free(a);
}

static uint64_t next_rand(void);

/* Decimal fractions, which the parser divides itself when they have at most
 * 15 digits (Clinger's fast path): bit for bit what cJSON's strtod gives,
 * for every split of 1..17 digits into integer and fraction, random digits,
 * both signs, leading and trailing zeros, and what may follow. */
static void test_decimal_numbers(void **state)
{
    (void)state;
    static const char *const fixed[] = {
        "0.1", "0.2", "0.3", "-0.0", "0.0", "00.5", "1.0", "712.33", "320.83", "49999.990",
        "999999999999.999", "99999999999999.9", "0.000000000000001", "0.123456789012345",
        "9007199254740.99", "1.", "1.e5", "1.5e3", "1.5E-3", "1.5.5", "-1.25", "-.5",
        "123456789012345.6", "0.1234567890123456", "4503599627370495.5",
    };
    static const char *const after[] = { "", ",", "}", " ", "e", "E1", "+", "-", ".", "x" };
    fw_arena *a = fw_arena_new(4096);
    char msg[128], num[64];
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        for (size_t k = 0; k < sizeof after / sizeof after[0]; k++) {
            int m = snprintf(msg, sizeof msg, "{\"a\":%s%s}", fixed[i], after[k]);
            check_one(msg, (size_t)m, a);
            m = snprintf(msg, sizeof msg, "[%s%s", fixed[i], after[k]);
            check_one(msg, (size_t)m, a);
        }
    for (int round = 0; round < 20000; round++) {
        size_t digits = 1 + (size_t)(next_rand() % 17), point = 1 + (size_t)(next_rand() % digits);
        size_t n = 0;
        if (next_rand() % 2)
            num[n++] = '-';
        for (size_t d = 0; d < digits; d++) {
            if (d == point)
                num[n++] = '.';
            num[n++] = (char)('0' + next_rand() % 10);
        }
        num[n] = '\0';
        int m = snprintf(msg, sizeof msg, "{\"amount\":%s,\"x\":1}", num);
        check_one(msg, (size_t)m, a);
    }
    fw_arena_free(a);
}

static void test_nesting_limit(void **state)
{
    (void)state;
    fw_arena *a = fw_arena_new(4096);
    for (size_t depth = 998; depth <= 1002; depth++) {
        size_t len = depth * 2;
        char *d = malloc(len);
        assert_non_null(d);
        memset(d, '[', depth);
        memset(d + depth, ']', depth);
        check_one(d, len, a);
        /* Objects the same way: {"a":{"a":...}} */
        size_t olen = depth * 6;
        char *o = malloc(olen);
        assert_non_null(o);
        for (size_t i = 0; i < depth - 1; i++)
            memcpy(o + i * 5, "{\"a\":", 5);
        size_t p = (depth - 1) * 5;
        memcpy(o + p, "{}", 2);
        p += 2;
        memset(o + p, '}', depth - 1);
        p += depth - 1;
        check_one(o, p, a);
        free(d);
        free(o);
    }
    fw_arena_free(a);
}

static void load_dir(const char *dir)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return;
    struct dirent *e;
    while ((e = readdir(dh))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        add_input(buf, n);
    }
    closedir(dh);
}

/* Every line of a JSONL file. */
static void load_lines(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            n--;
        add_input(line, (size_t)n);
    }
    free(line);
    fclose(f);
}

static void test_corpus(void **state)
{
    (void)state;
    load_dir(FW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_event");
    load_dir(FW_SOURCE_DIR "/tests/fuzz/regressions/fuzz_event");
    DIR *dh = opendir(FW_SOURCE_DIR "/tests/cases");
    assert_non_null(dh);
    struct dirent *e;
    while ((e = readdir(dh))) {
        char path[4096];
        snprintf(path, sizeof path, FW_SOURCE_DIR "/tests/cases/%s/events.jsonl", e->d_name);
        load_lines(path);
    }
    closedir(dh);
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++)
        add_input(edge[i].d, edge[i].len);
    assert_true(n_inputs > 100);
    fw_arena *a = fw_arena_new(64 * 1024);
    for (size_t i = 0; i < n_inputs; i++)
        check_one(inputs[i].data, inputs[i].len, a);
    fw_arena_free(a);
}

static uint64_t rng = 0x9E3779B97F4A7C15u;
static uint64_t next_rand(void) { return fwt_xorshift(&rng); }

/* Bytes that steer a JSON parser: structure, escapes, number bytes. */
static const char steer[] = "{}[]\":,!\\u0123456789abcdefABCDEF+-.eEntrfl \t\r\n\x01\x7f\xef\xbb\xbf\xe4\xb8\xad\xc3\xed\xa0\x80\xf4\x90\x00";

static void test_random_mutations(void **state)
{
    (void)state;
    if (!n_inputs)
        test_corpus(state);
    fw_arena *a = fw_arena_new(64 * 1024);
    char buf[8192];
    for (int round = 0; round < 200000; round++) {
        const blob *b = &inputs[next_rand() % n_inputs];
        size_t len = b->len > sizeof buf - 16 ? sizeof buf - 16 : b->len;
        memcpy(buf, b->data, len);
        int edits = 1 + (int)(next_rand() % 4);
        for (int k = 0; k < edits; k++) {
            size_t at = len ? next_rand() % (len + 1) : 0;
            uint64_t r = next_rand();
            char c = r % 8 ? steer[(r >> 3) % (sizeof steer - 1)] : (char)(r >> 3);
            switch (next_rand() % 4) {
            case 0:     /* replace */
                if (at < len)
                    buf[at] = c;
                break;
            case 1:     /* insert */
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = c;
                len++;
                break;
            case 2:     /* delete */
                if (at < len) {
                    memmove(buf + at, buf + at + 1, len - at - 1);
                    len--;
                }
                break;
            default:    /* cut */
                len = at;
                break;
            }
            if (len > sizeof buf - 16)
                len = sizeof buf - 16;
        }
        check_one(buf, len, a);
    }
    fw_arena_free(a);
}

int main(void)
{
    fw_event_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_short_strings),
        cmocka_unit_test(test_decimal_numbers),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_random_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_regex_literals.c — the literal scan that lets a regex search be
 * skipped (src/regex_literals.c, match.c).
 *
 * A skipped search is taken as "no match", so the one property that
 * matters is soundness: whenever PCRE2 finds a match, the scan must find
 * one of the search's literals.  The differential tests check exactly that
 * against PCRE2 itself, on texts built from pieces of the patterns; the
 * table tests pin what is extracted (so that a reading that gives up on
 * everything, which would be sound and useless, fails too); the engine
 * test checks alerts through a real pipeline with the scan shared by
 * several rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "harness.h"
#include "regex_literals.h"

/* The literals of pattern as "a|b|c" in extraction order, or "-" when
 * nothing is known. */
static void literals_text(const char *pattern, bool caseless, char *out, size_t cap)
{
    fw_litset s;
    if (!fw_regex_literals(pattern, caseless, &s)) {
        snprintf(out, cap, "-");
        return;
    }
    out[0] = '\0';
    size_t used = 0;
    for (uint32_t i = 0; i < s.n; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%.*s", i ? "|" : "",
                                 (int)s.len[i], s.lit[i]);
    fw_litset_clear(&s);
}

static void test_extraction(void **state)
{
    (void)state;
    static const struct { const char *pattern; bool caseless; const char *want; } cases[] = {
        /* the shipped SMS patterns */
        { "(安全账户|公安局|检察院|涉嫌洗钱|通缉令|资金清查|冻结.{0,6}账户|配合调查)", false,
          "安全账户|公安局|检察院|涉嫌洗钱|通缉令|资金清查|冻结|配合调查" },
        { "(退款|理赔|中奖|领奖|积分兑换|快递丢失)", false,
          "退款|理赔|中奖|领奖|积分兑换|快递丢失" },
        { "(https?://|www\\.|[a-z0-9-]+\\.(cn|com|top|xyz|cc)/)", false,
          "http|www.|cn|com|top|xyz|cc" },
        { "(刷单|返利|点赞.{0,4}佣金|兼职.{0,6}日结|垫付)", false, "刷单|返利|点赞|兼职|垫付" },
        { "(https?://|www\\.)", false, "http|www." },
        /* the longest run of a sequence wins; ties keep the first */
        { "ab.cdef", false, "cdef" },
        { "abc.def", false, "abc" },
        { "x?abc", false, "abc" },
        { "ab?cd", false, "cd" },
        { "ab+cd", false, "ab" },
        { "a(?:bc|de)f", false, "bc|de" },
        { "(?:bc|de)?fgh", false, "fgh" },
        { "(?:ab|cd){2,3}", false, "ab|cd" },
        { "\\d+元\\d+", false, "元" },
        { "[^]x]+yz", false, "yz" },
        { "[[:digit:]]]ab", false, "]ab" },
        { "[[:^alpha:]x]yz", false, "yz" },
        { "[[:a]b|cd:]ef]gh", false, "-" },   /* not a POSIX class: the class ends at "a]" */
        { "^(170|171|162)\\d{8}$", false, "170|171|162" },
        { "a*b*", false, "-" },            /* nothing required */
        { "ab|c", false, "-" },            /* a one-byte branch */
        { "(ab|)", false, "-" },           /* an empty branch */
        { "abc", true, "-" },              /* caseless */
        { "(?i)abc", false, "-" },         /* inline options */
        { "^00(?!86)", false, "-" },       /* lookahead */
        { "(a)\\1bc", false, "-" },        /* a back-reference: not read */
        { "\\x41BC", false, "-" },         /* a code point escape */
        { "\\QA.B\\E", false, "-" },
        { "(*UTF)abc", false, "-" },
        { "ab{,3}cd", false, "-" },        /* a brace that is not a quantifier here */
        { "(?<n>ab)cd", false, "-" },
        { "", false, "-" },
    };
    char got[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        literals_text(cases[i].pattern, cases[i].caseless, got, sizeof got);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s: literals \"%s\", expected \"%s\"", cases[i].pattern, got,
                     cases[i].want);
    }
}

/* A run of literal characters longer than the reader keeps (255 bytes) is
 * cut into pieces: each literal must still be a substring of the pattern's
 * one match, the pattern itself (a character that did not fit must not be
 * skipped while later ones are kept). */
static void test_long_run(void **state)
{
    (void)state;
    char pattern[1024];
    size_t n = 0;
    memset(pattern, 'a', 254);
    n = 254;
    for (int i = 0; i < 100; i++) {        /* 中b 中b ... crosses 255 mid-character */
        memcpy(pattern + n, "\xe4\xb8\xad" "b", 4);
        n += 4;
    }
    pattern[n] = '\0';
    fw_litset s;
    assert_true(fw_regex_literals(pattern, false, &s));
    for (uint32_t i = 0; i < s.n; i++)
        if (!memmem(pattern, n, s.lit[i], s.len[i]))
            fail_msg("literal %u (%u bytes) is not in the pattern's one match", i, s.len[i]);
    assert_int_equal(s.n, 1);              /* the longest piece: 255 bytes of 中b... */
    assert_int_equal(s.len[0], 255);
    fw_litset_clear(&s);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void) { return fwt_xorshift(&rng); }

/* The literals found in t[0..n), the slow way. */
static uint64_t naive_scan(const fw_litset *s, const char *t, size_t n)
{
    uint64_t found = 0;
    for (uint32_t k = 0; k < s->n; k++)
        for (size_t i = 0; i + s->len[k] <= n; i++)
            if (memcmp(t + i, s->lit[k], s->len[k]) == 0) {
                found |= (uint64_t)1 << k;
                break;
            }
    return found;
}

/* Random literal sets over a small alphabet (so that they overlap, share
 * prefixes and sit at the ends of texts), random texts over it: the scan
 * finds exactly the literals a naive search finds. */
static void test_scan_finds_what_is_there(void **state)
{
    (void)state;
    static const char alphabet[] = "abc\xe5\xae\x89";
    for (int round = 0; round < 2000; round++) {
        fw_litset s = { .n = 0 };
        uint32_t want = 1 + (uint32_t)(next_rand() % (round % 7 == 0 ? 64 : 6));
        while (s.n < want) {
            uint32_t len = 2 + (uint32_t)(next_rand() % 4);
            s.lit[s.n] = malloc(len);
            for (uint32_t j = 0; j < len; j++)
                s.lit[s.n][j] = alphabet[next_rand() % 6];
            s.len[s.n++] = len;
        }
        fw_litscan *sc = fw_litscan_new();
        assert_int_equal(fw_litscan_add(sc, &s), s.n == 64 ? UINT64_MAX
                                                          : ((uint64_t)1 << s.n) - 1);
        for (int t = 0; t < 20; t++) {
            size_t n = (size_t)(next_rand() % 24);
            /* exactly n bytes and the terminator, on the heap: ASan sees a
             * read past it */
            char *text = malloc(n + 1);
            for (size_t j = 0; j < n; j++)
                text[j] = alphabet[next_rand() % 6];
            text[n] = '\0';
            uint64_t got = fw_litscan_run(sc, text, n), want_bits = naive_scan(&s, text, n);
            if (got != want_bits)
                fail_msg("round %d: scan found %#llx, naive %#llx (text \"%s\")", round,
                         (unsigned long long)got, (unsigned long long)want_bits, text);
            free(text);
        }
        fw_litscan_free(sc);
        fw_litset_clear(&s);
    }
}

/* A scan holds 64 literals; a set that does not fit is refused whole. */
static void test_scan_refuses_what_does_not_fit(void **state)
{
    (void)state;
    fw_litset s = { .n = 0 };
    for (uint32_t i = 0; i < 40; i++) {
        s.lit[i] = malloc(3);
        memcpy(s.lit[i], (char[]){ 'a', (char)('A' + i), 'z' }, 3);
        s.len[i] = 3;
        s.n++;
    }
    fw_litscan *sc = fw_litscan_new();
    assert_int_equal(fw_litscan_add(sc, &s), ((uint64_t)1 << 40) - 1);
    assert_int_equal(fw_litscan_add(sc, &s), 0);          /* 80 > 64 */
    s.n = 24;
    assert_int_equal(fw_litscan_add(sc, &s), UINT64_MAX & ~(((uint64_t)1 << 40) - 1));
    assert_int_equal(fw_litscan_run(sc, "xxaWz", 5), ((uint64_t)1 << 22) | ((uint64_t)1 << 62));
    s.n = 40;
    fw_litscan_free(sc);
    fw_litset_clear(&s);
}

/* Patterns of every shape the reading follows; for each, texts made of its
 * own pieces (whole literals, halves of them, other characters) so that
 * many match and many nearly match.  Whenever PCRE2 matches, the scan must
 * have found one of the literals. */
static const struct { const char *pattern, *sample; } sound_patterns[] = {
    { "(安全账户|公安局|检察院|涉嫌洗钱|通缉令|资金清查|冻结.{0,6}账户|配合调查)",
      "冻结你的账户" },
    { "(退款|理赔|中奖|领奖|积分兑换|快递丢失)", "积分兑换" },
    { "(https?://|www\\.|[a-z0-9-]+\\.(cn|com|top|xyz|cc)/)", "ab-1.top/" },
    { "(刷单|返利|点赞.{0,4}佣金|兼职.{0,6}日结|垫付)", "兼职每天日结" },
    { "ab?cd", "acd" }, { "ab+cd", "abbcd" }, { "a(?:bc|de)+f", "adebcf" },
    { "(?:bc|de)?fgh", "defgh" }, { "\\d+元\\d+", "12元5" }, { "[^]x]+yz", "]ayz" },
    { "x{2}yz", "xxyz" }, { "(a|b)(cd|ef){1,2}", "befcd" }, { "c\\.d\\/e", "c.d/e" },
    { "^ab$|cd\\b", "cd ab" }, { "(?:ab|cd)\\s*(?:ef|gh)", "cd gh" },
    { "元{2,}角", "元元角" }, { "[a-z]+@(qq|163)\\.com", "abc@163.com" },
};

static const char *const pieces[] = {
    "安全", "账户", "公安局", "冻结", "冻", "结", "你", "好", "检察院", "x", "ab", "cd",
    "a", "b", "c", "d", "e", "f", "g", "h", "y", "z", "ef", "gh", " ", "元", "角", "1", "23",
    "http", "s", "://", "www", ".", "cn", "com", "/", "@", "qq", "163", "点赞", "佣金", "兼职",
    "日结", "垫付", "退款", "中奖", "]", "\\", "de", "bc", "fgh", "xx", "abcf", "adebcf",
};

static void test_sound_against_pcre2(void **state)
{
    (void)state;
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    size_t npieces = sizeof pieces / sizeof pieces[0];
    for (size_t p = 0; p < sizeof sound_patterns / sizeof sound_patterns[0]; p++) {
        const char *pat = sound_patterns[p].pattern;
        fw_litset s;
        if (!fw_regex_literals(pat, false, &s))
            fail_msg("%s: no literals (every pattern here has some)", pat);
        int code;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
        assert_non_null(re);
        fw_litscan *sc = fw_litscan_new();
        uint64_t mask = fw_litscan_add(sc, &s);
        assert_true(mask != 0);
        size_t matched = 0, ruled_out = 0;
        char text[256];
        for (int t = 0; t < 20000; t++) {
            size_t n = 0, k = (size_t)(next_rand() % 9);
            for (size_t i = 0; i < k; i++) {
                /* a piece, the sample, or a slice of the sample (whole
                 * characters: PCRE2 is given valid UTF-8, as events are) */
                const char *piece = pieces[next_rand() % npieces];
                size_t len = strlen(piece);
                uint64_t how = next_rand() % 4;
                if (how < 2) {
                    const char *smp = sound_patterns[p].sample;
                    size_t sl = strlen(smp), from = 0, to = sl;
                    if (how == 1) {
                        from = (size_t)(next_rand() % sl);
                        to = from + (size_t)(next_rand() % (sl - from + 1));
                        while (from < sl && (smp[from] & 0xC0) == 0x80)
                            from++;
                        while (to < sl && (smp[to] & 0xC0) == 0x80)
                            to++;
                        if (to < from)
                            to = from;
                    }
                    piece = smp + from;
                    len = to - from;
                }
                if (n + len >= sizeof text)
                    break;
                memcpy(text + n, piece, len);
                n += len;
            }
            text[n] = '\0';
            bool re_match = pcre2_match(re, (PCRE2_SPTR)text, n, 0, 0, md, NULL) >= 0;
            bool scan_maybe = (fw_litscan_run(sc, text, n) & mask) != 0;
            if (re_match && !scan_maybe)
                fail_msg("%s matches \"%s\" but the scan ruled it out", pat, text);
            matched += re_match;
            ruled_out += !scan_maybe;
        }
        /* the texts exercised both sides */
        if (matched < 20 || ruled_out < 20)
            fail_msg("%s: %zu matches, %zu ruled out of 20000: texts too one-sided", pat,
                     matched, ruled_out);
        fw_litscan_free(sc);
        fw_litset_clear(&s);
        pcre2_code_free(re);
    }
    pcre2_match_data_free(md);
}

/* Through the engine: R1..R3 share one scan of "text", R4 searches another
 * field, R5 has a pattern the reading gives up on (it always runs), R6 is
 * not_regex.  Each text's alerts are what the patterns say. */
static void test_engine_alerts(void **state)
{
    (void)state;
    const char *rules =
        "[{\"id\":\"R1\",\"event\":\"sms\",\"where\":[{\"field\":\"text\",\"regex\":"
        "\"(安全账户|冻结.{0,6}账户)\"}],\"subject\":\"to\"},"
        "{\"id\":\"R2\",\"event\":\"sms\",\"where\":[{\"field\":\"text\",\"regex\":"
        "\"(退款|中奖)\"},{\"field\":\"text\",\"regex\":\"https?://\"}],\"subject\":\"to\"},"
        "{\"id\":\"R3\",\"event\":\"sms\",\"where\":[{\"any\":[{\"field\":\"text\",\"regex\":"
        "\"刷单\"},{\"field\":\"text\",\"regex\":\"返利\"}]}],\"subject\":\"to\"},"
        "{\"id\":\"R4\",\"event\":\"sms\",\"where\":[{\"field\":\"from\",\"regex\":"
        "\"^(95|96)\\\\d+\"}],\"subject\":\"to\"},"
        "{\"id\":\"R5\",\"event\":\"sms\",\"where\":[{\"field\":\"text\",\"regex\":"
        "\"(?i)http\"}],\"subject\":\"to\"},"
        "{\"id\":\"R6\",\"event\":\"sms\",\"where\":[{\"field\":\"text\",\"not_regex\":"
        "\"(安全账户|公安局)\"},{\"field\":\"from\",\"regex\":\"^10\"}],\"subject\":\"to\"}]";
    static const struct { const char *from, *text, *rules; } ev[] = {
        { "138", "周末回家吃饭吗", "" },
        { "138", "请把钱转入安全账户", "R1" },
        { "138", "你的冻结资金账户", "R1" },             /* 冻结 + 4 chars + 账户 */
        { "138", "冻结了一二三四五六七八账户", "" },      /* more than 6 between */
        { "138", "退款请点 https://x.cn", "R2 R5" },
        { "138", "退款请联系客服", "" },                   /* one literal of R2, not both */
        { "138", "中奖 HTTP://x", "R5" },                  /* caseless: only R5 */
        { "138", "刷单返利", "R3" },
        { "9512", "普通通知", "R4" },
        { "10086", "话费余额", "R6" },
        { "10086", "公安局通知", "" },
        { "10086", "", "R6" },
    };
    char *events = NULL;
    size_t cap = 0, used = 0;
    for (size_t i = 0; i < sizeof ev / sizeof ev[0]; i++) {
        char line[512];
        int n = snprintf(line, sizeof line,
                         "{\"event_id\":\"e%zu\",\"type\":\"sms\",\"ts\":%zu,\"from\":\"%s\","
                         "\"to\":\"t%zu\",\"text\":\"%s\"}\n",
                         i, 1700000000000 + i, ev[i].from, i, ev[i].text);
        if (used + (size_t)n + 1 > cap) {
            cap = (cap + (size_t)n + 1) * 2;
            events = realloc(events, cap);
        }
        memcpy(events + used, line, (size_t)n + 1);
        used += (size_t)n;
    }
    for (uint32_t threads = 1; threads <= 2; threads++) {
        fwt_result res;
        char err[4096];
        if (fwt_run(rules, NULL, events, threads, &res, err, sizeof err) != 0)
            fail_msg("run failed: %s", err);
        size_t expected = 0;
        for (size_t i = 0; i < sizeof ev / sizeof ev[0]; i++) {
            char id[16];
            snprintf(id, sizeof id, "e%zu", i);
            static const char *const all[] = { "R1", "R2", "R3", "R4", "R5", "R6" };
            for (size_t r = 0; r < 6; r++) {
                bool want = strstr(ev[i].rules, all[r]) != NULL;
                size_t got = fwt_count(&res, all[r], NULL, id);
                if (got != (want ? 1u : 0u))
                    fail_msg("event %zu (\"%s\"): rule %s gave %zu alerts, expected %d", i,
                             ev[i].text, all[r], got, want);
                expected += want;
            }
        }
        assert_int_equal(res.nalerts, expected);
        assert_int_equal(res.faults, 0);
        fwt_result_free(&res);
    }
    free(events);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extraction),
        cmocka_unit_test(test_long_run),
        cmocka_unit_test(test_scan_finds_what_is_there),
        cmocka_unit_test(test_scan_refuses_what_does_not_fit),
        cmocka_unit_test(test_sound_against_pcre2),
        cmocka_unit_test(test_engine_alerts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

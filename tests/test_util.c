/* test_util.c — the plumbing: hash table, SHA-256, number text, UTF-8,
 * arena, JSON string escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/arena.h"
#include "fraudwatch/buf.h"
#include "fraudwatch/event.h"
#include "fraudwatch/hash.h"
#include "update.h"
#include "sha256.h"
#include "stream_clock.h"

struct kv {
    char key[16];
    int val;
};

static bool kv_eq(const void *item, const void *key, size_t len)
{
    const struct kv *k = item;
    return strlen(k->key) == len && memcmp(k->key, key, len) == 0;
}

static uint64_t h(const char *s) { return fw_hash64(s, strlen(s), 1); }

static void test_hmap(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct kv *items = calloc(N, sizeof *items);
    fw_hmap *m = fw_hmap_new(0);
    for (int i = 0; i < N; i++) {
        snprintf(items[i].key, sizeof items[i].key, "k%d", i);
        items[i].val = i;
        assert_int_equal(fw_hmap_insert(m, h(items[i].key), &items[i]), 0);
    }
    assert_int_equal(fw_hmap_count(m), N);
    for (int i = 0; i < N; i++) {
        struct kv *k = fw_hmap_find(m, h(items[i].key), items[i].key,
                                    strlen(items[i].key), kv_eq);
        assert_ptr_equal(k, &items[i]);
    }
    assert_null(fw_hmap_find(m, h("nope"), "nope", 4, kv_eq));
    /* fw_hmap_peek, the prefetch hint: never an item with another hash,
     * nothing for an absent key, and the item itself for most keys (those
     * in their home slot: the table is at most 5/8 full). */
    int home = 0;
    for (int i = 0; i < N; i++) {
        fw_hmap_prefetch(m, h(items[i].key));
        struct kv *p = fw_hmap_peek(m, h(items[i].key));
        assert_true(p == NULL || p == &items[i]);
        home += p == &items[i];
    }
    assert_true(home > N / 2);
    assert_null(fw_hmap_peek(m, h("nope")));
    /* remove every other; the rest stay reachable (backward shift) */
    for (int i = 0; i < N; i += 2)
        assert_ptr_equal(fw_hmap_remove(m, h(items[i].key), items[i].key,
                                        strlen(items[i].key), kv_eq), &items[i]);
    assert_int_equal(fw_hmap_count(m), N / 2);
    for (int i = 0; i < N; i++) {
        struct kv *k = fw_hmap_find(m, h(items[i].key), items[i].key,
                                    strlen(items[i].key), kv_eq);
        assert_ptr_equal(k, i % 2 ? &items[i] : NULL);
    }
    /* removal while iterating: every item is seen, the table ends empty */
    size_t pos = 0, seen = 0;
    struct kv *k;
    char *visited = calloc(N, 1);
    while ((k = fw_hmap_next(m, &pos))) {
        visited[k->val] = 1;
        fw_hmap_remove_at(m, &pos);
        seen++;
    }
    assert_int_equal(fw_hmap_count(m), 0);
    for (int i = 1; i < N; i += 2)
        assert_true(visited[i]);
    assert_true(seen >= N / 2);
    fw_hmap_free(m);
    free(items);
    free(visited);
}

static void test_sha256(void **state)
{
    (void)state;
    struct { const char *in; const char *hex; } v[] = {
        { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
    };
    for (size_t i = 0; i < 3; i++) {
        fw_sha256 s;
        unsigned char d[32];
        char hex[65];
        fw_sha256_init(&s);
        /* feed byte by byte to cross block boundaries */
        for (const char *p = v[i].in; *p; p++)
            fw_sha256_update(&s, p, 1);
        fw_sha256_final(&s, d);
        for (int j = 0; j < 32; j++)
            sprintf(hex + 2 * j, "%02x", d[j]);
        assert_string_equal(hex, v[i].hex);
    }
}

static void test_numtext(void **state)
{
    (void)state;
    struct { double v; const char *s; } c[] = {
        { 100.0, "100" }, { 0, "0" }, { -0.0, "0" }, { 1.5, "1.5" }, { -5, "-5" },
        { 0.1, "0.1" }, { 0.1 + 0.2, "0.30000000000000004" }, { 1e21, "1e+21" },
        { 1e20, "100000000000000000000" }, { 123456789012345680000.0, "123456789012345680000" },
        { 1e-7, "1e-7" }, { 0.000001, "0.000001" }, { 1.25e-10, "1.25e-10" },
        { 13812345678.0, "13812345678" }, { 9007199254740993.0, "9007199254740992" },
        { 5e-324, "5e-324" }, { 1.7976931348623157e308, "1.7976931348623157e+308" },
        { 123.456, "123.456" }, { -0.5, "-0.5" }, { INFINITY, "Infinity" },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char buf[FW_NUMTEXT_MAX];
        size_t n = fw_numtext(c[i].v, buf);
        assert_int_equal(n, strlen(buf));
        if (strcmp(buf, c[i].s) != 0)
            fail_msg("%.17g -> \"%s\", want \"%s\"", c[i].v, buf, c[i].s);
    }
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(fw_utf8_valid("plain ascii text, long enough", 29));
    assert_true(fw_utf8_valid("安全账户", strlen("安全账户")));
    assert_true(fw_utf8_valid("\xf0\x9f\x98\x80", 4));           /* emoji */
    assert_false(fw_utf8_valid("\xff", 1));
    assert_false(fw_utf8_valid("\xc0\xaf", 2));                   /* overlong */
    assert_false(fw_utf8_valid("\xed\xa0\x80", 3));               /* surrogate */
    assert_false(fw_utf8_valid("\xf4\x90\x80\x80", 4));           /* > U+10FFFF */
    assert_false(fw_utf8_valid("abcdefgh\xe5\xae", 10));          /* truncated */
    assert_false(fw_utf8_valid("\xe5\x41\x41", 3));               /* bad continuation */
}

/* UTF-8 by its definition (RFC 3629): decode, then refuse overlong forms,
 * surrogates and anything above U+10FFFF. */
static bool utf8_by_definition(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        uint32_t cp;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

/* fw_utf8_valid against the definition: every sequence of up to three
 * bytes that starts with a lead byte, alone and after and before other
 * text (its fast paths take eight ASCII bytes and three-byte characters
 * at a time), four-byte sequences over the boundary values, and random
 * mixes of CJK, ASCII and broken bytes. */
static void test_utf8_exhaustive(void **state)
{
    (void)state;
    unsigned char buf[64];
    for (uint32_t x = 0; x < 1u << 24; x++) {
        unsigned char t[3] = { (unsigned char)(x >> 16), (unsigned char)(x >> 8), (unsigned char)x };
        if (t[0] < 0xC0 && t[0] != 0x80 && t[0] != 0x41)
            continue;
        for (size_t len = 1; len <= 3; len++) {
            if (len < 3 && (x & ((1u << (8 * (3 - len))) - 1)))
                continue;   /* shorter: each prefix once */
            static const char *const around[][2] = {
                { "", "" }, { "ab", "" }, { "", "c" }, { "0123456789", "\xe4\xb8\xad" },
                { "\xe4\xb8\xad", "\xe4\xb8\xadz" },
                /* the first, third and fifth character of a five-character
                 * window, and across its end (an ASCII byte before it) */
                { "", "\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad" },
                { "\xe4\xb8\xad\xe6\x96\x87", "\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad" },
                { "\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad\xe6\x96\x87", "\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad\xe6\x96\x87" },
                { "\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad\xe6\x96\x87" "a", "\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad\xe6\x96\x87" },
            };
            for (size_t a = 0; a < sizeof around / sizeof around[0]; a++) {
                size_t pre = strlen(around[a][0]), post = strlen(around[a][1]);
                memcpy(buf, around[a][0], pre);
                memcpy(buf + pre, t, len);
                memcpy(buf + pre + len, around[a][1], post);
                size_t n = pre + len + post;
                if (fw_utf8_valid((const char *)buf, n) != utf8_by_definition(buf, n))
                    fail_msg("fw_utf8_valid(%s%02x%02x%02x%s) disagrees", around[a][0],
                             t[0], t[1], t[2], around[a][1]);
            }
        }
    }
    static const unsigned char edge[] = { 0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F,
                                          0xA0, 0xBF, 0xC0, 0xE0, 0xED, 0xF0, 0xFF };
    for (unsigned lead = 0xF0; lead <= 0xF8; lead++)
        for (size_t i = 0; i < sizeof edge; i++)
            for (size_t j = 0; j < sizeof edge; j++)
                for (size_t k = 0; k < sizeof edge; k++) {
                    unsigned char t[4] = { (unsigned char)lead, edge[i], edge[j], edge[k] };
                    assert_int_equal(fw_utf8_valid((const char *)t, 4), utf8_by_definition(t, 4));
                }
    static const char *const piece[] = { "中", "文", "a", "bc", "\xed\x9f\xbf", "\xee\x80\x80",
                                         "\xf0\x9f\x98\x80", "\xc3\xa9", "\xe0", "\xbf", "\xed\xa0\x80" };
    uint64_t r = 88172645463325252ULL;
    for (int round = 0; round < 200000; round++) {
        size_t n = 0;
        while (n < sizeof buf - 8) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            const char *p = piece[r % (round & 1 ? 11 : 8)];
            if (r >> 60 == 0)
                break;
            memcpy(buf + n, p, strlen(p));
            n += strlen(p);
        }
        if (fw_utf8_valid((const char *)buf, n) != utf8_by_definition(buf, n))
            fail_msg("fw_utf8_valid disagrees on a random mix of %zu bytes", n);
    }
}

static void test_arena_window(void **state)
{
    (void)state;
    fw_arena *a = fw_arena_new(256);
    size_t len;
    unsigned char *w = fw_arena_window(a, 10, &len);
    assert_non_null(w);
    assert_int_equal((uintptr_t)w % 16, 0);
    assert_int_equal(len, 256);
    memset(w, 'x', 20);
    fw_arena_commit(a, w + 20);             /* used up to 20: the next is at 32 */
    char *p = fw_arena_alloc(a, 8);
    assert_ptr_equal(p, w + 32);
    /* A window bigger than what is left: a new chunk, the old one kept. */
    unsigned char *w2 = fw_arena_window(a, 1000, &len);
    assert_non_null(w2);
    assert_true(len >= 1000);
    assert_int_equal((uintptr_t)w2 % 16, 0);
    memset(w2, 'y', len);
    fw_arena_commit(a, w2 + len);           /* all of it */
    assert_int_equal(w[19], 'x');
    char *q = fw_arena_alloc(a, 16);        /* so the next goes to a fresh chunk */
    assert_true(q < (char *)w2 || q >= (char *)w2 + len);
    memset(q, 'z', 16);
    assert_int_equal(w2[len - 1], 'y');
    fw_arena_reset(a);
    assert_int_equal(fw_arena_bytes(a), 256);
    fw_arena_free(a);
}

static void test_arena_and_buf(void **state)
{
    (void)state;
    fw_arena *a = fw_arena_new(256);
    char *big = fw_arena_alloc(a, 100000);  /* larger than a chunk */
    memset(big, 1, 100000);
    for (int i = 0; i < 1000; i++) {
        char *p = fw_arena_strndup(a, "hello", 5);
        assert_string_equal(p, "hello");
        assert_int_equal((uintptr_t)p % 16, 0);
    }
    fw_arena_reset(a);
    assert_int_equal(fw_arena_bytes(a), 256);
    fw_arena_free(a);

    fw_buf b = { 0 };
    fw_buf_json_str(&b, "a\"b\\c\n\x01" "d", 8, SIZE_MAX);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\n\\u0001d\"");
    b.len = 0;
    fw_buf_json_str(&b, "安全账户", strlen("安全账户"), 7); /* cut inside a character */
    assert_string_equal(b.p, "\"安全\"");
    b.len = 0;
    fw_buf_i64(&b, INT64_MIN);
    assert_string_equal(b.p, "-9223372036854775808");
    fw_buf_free(&b);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The stream clock is the median of the last 1024 event times, forward
 * only, and does not start before the ring is full. */
static void test_stream_clock(void **state)
{
    (void)state;
    fw_sclock c;
    fw_sclock_init(&c);
    for (int i = 0; i < FW_SCLOCK_RING - 1; i++)
        fw_sclock_observe(&c, 1000 + i);
    assert_true(fw_sclock_update(&c) == FW_TS_NONE);   /* not full yet */
    fw_sclock_observe(&c, 1000 + FW_SCLOCK_RING - 1);
    assert_int_equal(fw_sclock_update(&c), 1000 + FW_SCLOCK_RING / 2);

    /* 511 absurd times among the next 1024 (far future, 0, 1) do not move
     * it past the ordinary ones. */
    uint64_t x = 88172645463325252u;
    int64_t ordinary_max = 0;
    for (int i = 0; i < FW_SCLOCK_RING; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t t;
        if (i % 2 == 1 && i < 2 * 511)
            t = (i % 3 == 0) ? 253402300799999 : (i % 3 == 1 ? 0 : 1);
        else
            t = 5000 + (int64_t)(x % 100);
        if (t >= 5000 && t < 6000 && t > ordinary_max)
            ordinary_max = t;
        fw_sclock_observe(&c, t);
    }
    int64_t now = fw_sclock_update(&c);
    assert_true(now <= ordinary_max);
    assert_true(now >= 5000);

    /* Late times never move it back. */
    for (int i = 0; i < FW_SCLOCK_RING; i++)
        fw_sclock_observe(&c, 10);
    assert_true(fw_sclock_update(&c) == now);

    /* The selection agrees with sorting, on random rings with duplicates. */
    for (int round = 0; round < 200; round++) {
        fw_sclock r;
        fw_sclock_init(&r);
        int64_t v[FW_SCLOCK_RING];
        for (int i = 0; i < FW_SCLOCK_RING; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            v[i] = round % 4 == 0 ? (int64_t)(x % 7) : (int64_t)(x % 1000000) - 500000;
            fw_sclock_observe(&r, v[i]);
        }
        qsort(v, FW_SCLOCK_RING, sizeof v[0], cmp_i64);
        assert_true(fw_sclock_update(&r) == v[FW_SCLOCK_RING / 2]);
    }
}

int main(void)
{
    fw_event_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmap),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_numtext),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_utf8_exhaustive),
        cmocka_unit_test(test_arena_and_buf),
        cmocka_unit_test(test_arena_window),
        cmocka_unit_test(test_stream_clock),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}

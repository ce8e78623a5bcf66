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
        cmocka_unit_test(test_arena_and_buf),
        cmocka_unit_test(test_arena_window),
        cmocka_unit_test(test_stream_clock),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}

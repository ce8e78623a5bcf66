/* test_order.c — src/kafka_order.c, the reorder buffer that interleaves a
 * consumer's partitions by message time, without Kafka: messages are
 * integers cast to pointers, "behind" is a table the test sets, time is a
 * number the test moves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kafka_order.h"

static bool behind_table[8];

static bool behind(void *ctx, uint32_t src)
{
    (void)ctx;
    return behind_table[src];
}

#define MSG(n) ((void *)(uintptr_t)(n))

static int pop(fw_order *o, int64_t now, uint32_t *src)
{
    void *m = fw_order_pop(o, now, behind, NULL, src);
    return m ? (int)(uintptr_t)m : -1;
}

static int destroyed;
static void count_destroy(void *m)
{
    (void)m;
    destroyed++;
}

/* Two partitions, both buffered: oldest timestamp first, ties in push order,
 * and each partition's own order kept even when its timestamps go back. */
static void test_interleaves_by_time(void **state)
{
    (void)state;
    memset(behind_table, 0, sizeof behind_table);
    fw_order *o = fw_order_new(1000, 1000);
    fw_order_assign(o, 0, 0);
    fw_order_assign(o, 1, 0);
    /* partition 0 delivered a whole batch first, then partition 1 */
    fw_order_push(o, 0, 10, MSG(1));
    fw_order_push(o, 0, 30, MSG(2));
    fw_order_push(o, 0, 25, MSG(3));   /* older than its predecessor: stays after it */
    fw_order_push(o, 0, 50, MSG(4));
    fw_order_push(o, 1, 20, MSG(5));
    fw_order_push(o, 1, 30, MSG(6));   /* ties with 2: 2 was pushed first */
    fw_order_push(o, 1, 40, MSG(7));
    assert_int_equal(fw_order_buffered(o), 7);
    int want[] = { 1, 5, 2, 3, 6, 7, 4 };
    uint32_t src;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int got = pop(o, 1, &src);
        assert_int_equal(got, want[i]);
        assert_int_equal(src, got <= 4 ? 0 : 1);
    }
    assert_int_equal(pop(o, 1, &src), -1);
    assert_int_equal(fw_order_buffered(o), 0);
    fw_order_free(o, NULL);
}

/* A partition that is behind and has nothing buffered holds the stream up
 * for wait_ms after it ran dry, no longer; one caught up holds nothing. */
static void test_waits_for_a_partition_behind(void **state)
{
    (void)state;
    memset(behind_table, 0, sizeof behind_table);
    fw_order *o = fw_order_new(100, 1000);
    fw_order_assign(o, 0, 0);
    fw_order_assign(o, 1, 0);
    fw_order_push(o, 0, 10, MSG(1));
    uint32_t src;
    behind_table[1] = true;
    assert_int_equal(pop(o, 50, &src), -1);     /* 1 may hold something older */
    assert_int_equal(fw_order_buffered(o), 1);
    fw_order_push(o, 1, 5, MSG(2));             /* ... and it did */
    assert_int_equal(pop(o, 60, &src), 2);      /* 1 runs dry at 60 */
    assert_int_equal(pop(o, 100, &src), -1);    /* waiting again, since 60 */
    assert_int_equal(pop(o, 159, &src), -1);
    assert_int_equal(pop(o, 160, &src), 1);     /* 100 ms dry: not waited for */
    /* caught up: never waited for */
    fw_order_push(o, 0, 20, MSG(3));
    behind_table[1] = false;
    fw_order_push(o, 1, 30, MSG(4));
    assert_int_equal(pop(o, 200, &src), 3);
    assert_int_equal(pop(o, 200, &src), 4);     /* 0 is dry but caught up */
    fw_order_free(o, NULL);
}

/* A full buffer releases its oldest message even while a partition behind
 * is awaited: memory stays bounded. */
static void test_full_buffer_does_not_wait(void **state)
{
    (void)state;
    memset(behind_table, 0, sizeof behind_table);
    fw_order *o = fw_order_new(1000, 3);
    fw_order_assign(o, 0, 0);
    fw_order_assign(o, 1, 0);
    behind_table[1] = true;
    uint32_t src;
    fw_order_push(o, 0, 1, MSG(1));
    fw_order_push(o, 0, 2, MSG(2));
    assert_int_equal(pop(o, 0, &src), -1);
    fw_order_push(o, 0, 3, MSG(3));
    assert_int_equal(pop(o, 0, &src), 1);       /* 3 buffered: released */
    assert_int_equal(pop(o, 0, &src), -1);      /* 2 buffered: waits again */
    fw_order_free(o, count_destroy);
}

/* A revoked partition's buffered messages are handed back (not processed);
 * it is no longer waited for; unassigned partitions never are. */
static void test_revoke_drops_and_stops_waiting(void **state)
{
    (void)state;
    memset(behind_table, 0, sizeof behind_table);
    fw_order *o = fw_order_new(1000, 1000);
    fw_order_assign(o, 0, 0);
    fw_order_assign(o, 5, 0);                    /* lanes grow on demand */
    fw_order_push(o, 5, 1, MSG(1));
    fw_order_push(o, 5, 2, MSG(2));
    fw_order_push(o, 0, 3, MSG(3));
    behind_table[5] = true;
    destroyed = 0;
    fw_order_revoke(o, 5, count_destroy);
    assert_int_equal(destroyed, 2);
    assert_int_equal(fw_order_buffered(o), 1);
    uint32_t src;
    assert_int_equal(pop(o, 1, &src), 3);
    assert_int_equal(src, 0);
    behind_table[0] = true;                       /* 0 dry and behind from now */
    fw_order_push(o, 3, 9, MSG(4));               /* 3 was never assigned */
    assert_int_equal(pop(o, 2, &src), -1);
    assert_int_equal(pop(o, 1001, &src), 4);
    fw_order_push(o, 0, 10, MSG(5));
    destroyed = 0;
    fw_order_free(o, count_destroy);
    assert_int_equal(destroyed, 1);
}

/* Many messages through a lane: the ring grows and wraps without losing or
 * reordering any. */
static void test_ring_grows_and_wraps(void **state)
{
    (void)state;
    memset(behind_table, 0, sizeof behind_table);
    fw_order *o = fw_order_new(0, 1u << 20);
    fw_order_assign(o, 0, 0);
    fw_order_assign(o, 1, 0);
    uint32_t src;
    int next0 = 0, next1 = 100000;
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 300; i++) {
            int64_t ts = round * 1000 + i;
            assert_int_equal(fw_order_push(o, 0, ts, MSG(next0 + round * 300 + i + 1)), 0);
            assert_int_equal(fw_order_push(o, 1, ts, MSG(next1 + round * 300 + i + 1)), 0);
        }
        /* take 250 pairs: ts ties go to partition 0 (pushed first) */
        for (int i = 0; i < 500; i++) {
            int got = pop(o, 0, &src);
            assert_true(got > 0);
        }
    }
    size_t left = fw_order_buffered(o);
    assert_int_equal(left, 50 * 600 - 50 * 500);
    int last0 = 0, last1 = 0;
    int got;
    while ((got = pop(o, 0, &src)) > 0) {
        if (src == 0) {
            assert_true(got > last0);
            last0 = got;
        } else {
            assert_true(got > last1);
            last1 = got;
        }
    }
    assert_int_equal(last0, 50 * 300);
    assert_int_equal(last1, 100000 + 50 * 300);
    fw_order_free(o, NULL);
}

/* A behind callback sees the head's time and the two values pushed with
 * it (repart_in.c: when the event was forwarded, when it arrived). */
static int64_t seen_head, seen_aux0, seen_aux1;
static bool behind_until_head(void *ctx, uint32_t src)
{
    fw_order *o = ctx;
    (void)src;
    seen_head = fw_order_head_ts(o);
    seen_aux0 = fw_order_head_aux(o, 0);
    seen_aux1 = fw_order_head_aux(o, 1);
    return seen_head < 100;   /* the lane is known to be past 100 */
}

static void test_head_ts_and_aux(void **state)
{
    (void)state;
    fw_order *o = fw_order_new(1000, 1000);
    fw_order_assign(o, 0, 0);
    fw_order_assign(o, 1, 0);
    fw_order_push_aux(o, 0, 150, 7, 8, MSG(1));
    uint32_t src;
    /* head 150: lane 1 (empty) is past 100, so not waited for */
    assert_ptr_equal(fw_order_pop(o, 10, behind_until_head, o, &src), MSG(1));
    assert_int_equal(seen_head, 150);
    assert_int_equal(seen_aux0, 7);
    assert_int_equal(seen_aux1, 8);
    fw_order_push_aux(o, 0, 50, 9, 10, MSG(2));
    /* head 50: lane 1 may hold something older: wait (within 1000 ms of dry) */
    assert_null(fw_order_pop(o, 20, behind_until_head, o, &src));
    assert_int_equal(seen_head, 50);
    assert_int_equal(seen_aux0, 9);
    assert_int_equal(seen_aux1, 10);
    /* past the wait the stream goes on without it */
    assert_ptr_equal(fw_order_pop(o, 1001, behind_until_head, o, &src), MSG(2));
    /* fw_order_push is push_aux with zeros */
    fw_order_push(o, 1, 80, MSG(3));
    fw_order_push(o, 0, 90, MSG(4));
    assert_ptr_equal(fw_order_pop(o, 1002, behind_until_head, o, &src), MSG(3));
    assert_int_equal(src, 1);
    assert_int_equal(fw_order_head_aux(o, 0), 0);   /* the last pop's head */
    fw_order_free(o, NULL);
}

/* The daemon's poll loop (kafka_in.c, fw_in_poll) with and without
 * fw_order_pass over one random script of deliveries, assignments,
 * revocations, partitions behind and time passing: the messages come out
 * the same, in the same order, at the same steps — and both paths were
 * taken. */
struct script {
    uint64_t rng;
    int next;                       /* the next message delivered */
    uint32_t src;
    int64_t ts;
};

static uint32_t rnd(struct script *s)
{
    s->rng = s->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(s->rng >> 33);
}

static int run_script(bool use_pass, int *out, int max, int *passed)
{
    struct script sc = { .rng = 42, .next = 1 };
    memset(behind_table, 0, sizeof behind_table);
    fw_order *o = fw_order_new(50, 64);
    int64_t now = 0;
    int n = 0;
    *passed = 0;
    fw_order_assign(o, 0, now);
    sc.src = 0;
    sc.ts = 0;
    for (int step = 0; step < 40000 && n < max - 2; step++) {
        uint32_t r = rnd(&sc) % 100;
        if (r < 2) {
            fw_order_assign(o, rnd(&sc) % 3, now);
        } else if (r < 4) {
            fw_order_revoke(o, rnd(&sc) % 3, NULL);
        } else if (r < 10) {
            now += rnd(&sc) % 40;
        } else if (r < 13) {
            behind_table[rnd(&sc) % 3] ^= 1;
        } else {
            /* one call: take what the buffer gives, else deliver one */
            uint32_t src;
            void *m = fw_order_pop(o, now, behind, NULL, &src);
            if (!m) {
                void *d = MSG(sc.next);
                if (use_pass && fw_order_pass(o, sc.src, now)) {
                    m = d;
                    src = sc.src;
                    (*passed)++;
                } else {
                    assert_int_equal(fw_order_push(o, sc.src, sc.ts, d), 0);
                    m = fw_order_pop(o, now, behind, NULL, &src);
                }
                sc.next++;
                /* the next delivery: mostly partition 0, in time order */
                sc.src = rnd(&sc) % 8 < 6 ? 0 : rnd(&sc) % 4;
                sc.ts += rnd(&sc) % 5;
            }
            if (m) {
                out[n++] = (int)(uintptr_t)m;
                out[n++] = -(int)src - 1000 * step;
            }
        }
    }
    fw_order_free(o, NULL);
    return n;
}

static void test_pass_is_push_then_pop(void **state)
{
    (void)state;
    enum { MAX = 60000 };
    int *a = malloc(MAX * sizeof *a), *b = malloc(MAX * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    int pa, pb;
    int na = run_script(false, a, MAX, &pa);
    int nb = run_script(true, b, MAX, &pb);
    assert_int_equal(pa, 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na * sizeof *a);
    /* both paths taken, many times */
    assert_true(pb > 1000);
    assert_true(pb < na / 2 - 1000);
    free(a);
    free(b);
}

/* What fw_order_pass refuses: something buffered, or another partition
 * assigned (even an empty one: it might be waited for). */
static void test_pass_refuses(void **state)
{
    (void)state;
    memset(behind_table, 0, sizeof behind_table);
    fw_order *o = fw_order_new(1000, 1000);
    assert_true(fw_order_pass(o, 3, 0));        /* nothing assigned yet */
    fw_order_assign(o, 0, 0);
    assert_true(fw_order_pass(o, 0, 0));
    assert_false(fw_order_pass(o, 1, 0));       /* partition 0 may be waited for */
    fw_order_assign(o, 1, 0);
    assert_false(fw_order_pass(o, 0, 0));
    fw_order_revoke(o, 1, NULL);
    assert_true(fw_order_pass(o, 0, 0));
    fw_order_assign(o, 0, 0);                   /* assigned twice counts once */
    assert_true(fw_order_pass(o, 0, 0));
    fw_order_push(o, 0, 5, MSG(1));
    assert_false(fw_order_pass(o, 0, 0));       /* one held */
    uint32_t src;
    assert_int_equal(pop(o, 0, &src), 1);
    assert_true(fw_order_pass(o, 0, 0));
    fw_order_revoke(o, 0, NULL);
    assert_true(fw_order_pass(o, 2, 0));
    fw_order_free(o, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interleaves_by_time),
        cmocka_unit_test(test_waits_for_a_partition_behind),
        cmocka_unit_test(test_full_buffer_does_not_wait),
        cmocka_unit_test(test_revoke_drops_and_stops_waiting),
        cmocka_unit_test(test_ring_grows_and_wraps),
        cmocka_unit_test(test_head_ts_and_aux),
        cmocka_unit_test(test_pass_is_push_then_pop),
        cmocka_unit_test(test_pass_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

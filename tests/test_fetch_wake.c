/* test_fetch_wake.c — src/fetch_wake.c, when the consumer wakes librdkafka's
 * fetchers: after the queue was seen near a cap, once, on its way down
 * through half of it; never without a full queue; and often enough to see a
 * small queue fill. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fetch_wake.h"

/* Takes n messages of `len` bytes; returns how many of them asked for a
 * look at the queue. */
static unsigned take(fw_fetch_wake *w, unsigned n, size_t len)
{
    unsigned looks = 0;
    while (n--)
        looks += fw_fetch_wake_taken(w, len);
    return looks;
}

/* The byte cap: 100-byte messages, 100 000 bytes = 1000 messages. */
static void test_byte_cap(void **state)
{
    (void)state;
    fw_fetch_wake w;
    fw_fetch_wake_init(&w, 1000000, 100000);
    take(&w, 100, 100);
    assert_false(fw_fetch_wake_look(&w, 800));   /* 80 %: not full */
    assert_false(fw_fetch_wake_look(&w, 400));   /* never full: no wake-up */
    assert_false(fw_fetch_wake_look(&w, 950));   /* 95 %: full */
    assert_false(fw_fetch_wake_look(&w, 700));
    assert_false(fw_fetch_wake_look(&w, 500));   /* half is not below half */
    assert_true(fw_fetch_wake_look(&w, 499));
    assert_false(fw_fetch_wake_look(&w, 300));   /* once per full queue */
    assert_false(fw_fetch_wake_look(&w, 0));
    assert_false(fw_fetch_wake_look(&w, 1000));  /* full again */
    assert_true(fw_fetch_wake_look(&w, 10));
}

/* The same queue length is full or not by the messages' mean size. */
static void test_mean_size(void **state)
{
    (void)state;
    fw_fetch_wake w;
    fw_fetch_wake_init(&w, 1000000, 100000);
    take(&w, 100, 50);                           /* 50 bytes: 2000 fit */
    assert_false(fw_fetch_wake_look(&w, 1000));
    assert_false(fw_fetch_wake_look(&w, 10));    /* so no wake-up */
    take(&w, 300, 250);                          /* mean 200 bytes: 500 fit */
    assert_false(fw_fetch_wake_look(&w, 460));
    assert_true(fw_fetch_wake_look(&w, 240));
}

/* The message cap, whatever the bytes. */
static void test_message_cap(void **state)
{
    (void)state;
    fw_fetch_wake w;
    fw_fetch_wake_init(&w, 1000, (uint64_t)1 << 40);
    take(&w, 10, 100);
    assert_false(fw_fetch_wake_look(&w, 899));
    assert_false(fw_fetch_wake_look(&w, 100));
    assert_false(fw_fetch_wake_look(&w, 900));
    assert_true(fw_fetch_wake_look(&w, 499));
}

/* Looks come every 1024 messages for a big queue, and often enough for a
 * small one to be seen at 90 % and again below half. */
static void test_look_interval(void **state)
{
    (void)state;
    fw_fetch_wake big, small;
    fw_fetch_wake_init(&big, 1000000, 65536ull * 1024);
    fw_fetch_wake_init(&small, 1000000, 64ull * 1024);   /* ~370 of 180 bytes */
    take(&big, 16, 180);
    take(&small, 16, 180);
    assert_false(fw_fetch_wake_look(&big, 0));
    assert_false(fw_fetch_wake_look(&small, 0));
    assert_int_equal(take(&big, 10240, 180), 10);
    unsigned looks = take(&small, 3700, 180);
    assert_true(looks >= 3700 / 37);                     /* ≥ 10 per queue */
    assert_true(looks <= 3700 / 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_cap),
        cmocka_unit_test(test_mean_size),
        cmocka_unit_test(test_message_cap),
        cmocka_unit_test(test_look_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

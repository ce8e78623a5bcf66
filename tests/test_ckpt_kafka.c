/* test_ckpt_kafka.c — the state topic store (src/ckpt_kafka.c) against
 * librdkafka's mock cluster: faults the real broker cannot be made to
 * produce on demand.
 *
 *  - round trip: a checkpoint of several chunks written and published is
 *    what the next restore reads, byte for byte; an older one is kept as
 *    the fallback, older still are tombstoned;
 *  - transient produce errors on the chunks (NOT_ENOUGH_REPLICAS, leader
 *    not available) are retried by the idempotent producer: the checkpoint
 *    completes;
 *  - a permanent produce error on the chunks (MSG_SIZE_TOO_LARGE: a
 *    chunk above the topic's max.message.bytes) fails the write with a
 *    message naming the state topic; the checkpoint is never published and
 *    a restore still reads the previous one;
 *  - errors while restoring (Fetch answered NOT_LEADER, the group
 *    coordinator loading, then moved to another broker) delay the restore
 *    but it reads the newest complete checkpoint;
 *  - a manifest whose chunks do not add up is skipped for the one before;
 *  - a restore whose first read (the topic's tail) does not reach back to
 *    the newest checkpoint's first chunk reads again from there.
 * The store is driven directly through fw_ckpt_kafka_ops, as the
 * checkpoint writer thread does. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_kafka.h"
#include "fraudwatch/config.h"
#include "fraudwatch/log.h"

static int failures;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            failures++;                                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
        }                                                                                  \
    } while (0)

struct body {
    const char *p;
    size_t n;
};

static int fill(void *ctx, FILE *f, char *err, size_t errlen)
{
    const struct body *b = ctx;
    if (fwrite(b->p, 1, b->n, f) != b->n) {
        snprintf(err, errlen, "short write");
        return -1;
    }
    return 0;
}

static char *pattern(size_t n, unsigned seed)
{
    char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)((i * 2654435761u + seed) >> 13);
    return p;
}

/* Restores with a fresh store: the bytes, or NULL (none); *rc the answer. */
static char *restore(const fw_settings *s, size_t *n, int *rc, char *err, size_t errlen)
{
    fw_ckpt_kafka *k = fw_ckpt_kafka_new(s, NULL, err, errlen);
    if (!k) {
        *rc = -1;
        return NULL;
    }
    FILE *f = NULL;
    char where[400];
    *rc = fw_ckpt_kafka_ops.open_latest(k, &f, where, sizeof where, err, errlen);
    char *out = NULL;
    *n = 0;
    if (*rc == 0 && f) {
        size_t cap = 1 << 16;
        out = malloc(cap);
        size_t got;
        while ((got = fread(out + *n, 1, cap - *n, f)) > 0) {
            *n += got;
            if (*n == cap)
                out = realloc(out, cap *= 2);
        }
        fclose(f);
    }
    fw_ckpt_kafka_free(k);
    return out;
}

static int write_publish(fw_ckpt_kafka *k, const struct body *b, char *err, size_t errlen)
{
    if (fw_ckpt_kafka_ops.write(k, fill, (void *)b, err, errlen) != 0) {
        fw_ckpt_kafka_ops.discard(k);
        return -1;
    }
    if (fw_ckpt_kafka_ops.publish(k, err, errlen) != 0) {
        fw_ckpt_kafka_ops.discard(k);
        return -1;
    }
    return 0;
}

static void set(fw_settings *s, const char *k, const char *v)
{
    char err[1024];
    if (fw_config_set(s, k, v, k, err, sizeof err) != 0) {
        fprintf(stderr, "setting %s: %s\n", k, err);
        exit(1);
    }
}

int main(void)
{
    fw_log_set_level(getenv("FW_TEST_DEBUG") ? FW_LOG_DEBUG : FW_LOG_WARN);
    char err[2048];
    rd_kafka_conf_t *mc_conf = rd_kafka_conf_new();
    rd_kafka_t *mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mc_conf, err, sizeof err);
    if (!mrk) {
        fprintf(stderr, "mock handle: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(mrk, 3);
    if (!mc) {
        fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
        return 1;
    }
    const char *topic = "g1.state";
    rd_kafka_mock_topic_create(mc, topic, 1, 1);
    rd_kafka_mock_topic_create(mc, "in", 1, 1);
    rd_kafka_mock_partition_set_leader(mc, topic, 0, 1);
    rd_kafka_mock_coordinator_set(mc, "group", "g1", 3);

    fw_settings *s = fw_config_new();
    set(s, "kafka.bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc));
    set(s, "kafka.group.id", "g1");
    set(s, "input.topics", "in");
    set(s, "state.store", "kafka");
    set(s, "state.chunk_bytes", "1024");
    set(s, "instance.id", "test");
    if (fw_config_validate(s, err, sizeof err) != 0) {
        fprintf(stderr, "config: %s\n", err);
        return 1;
    }

    /* ---- nothing yet: no checkpoint, no commits → empty state, no error */
    size_t n;
    int rc;
    char *got = restore(s, &n, &rc, err, sizeof err);
    CHECK(rc == 0 && !got, "empty topic: rc=%d %s", rc, rc ? err : "");
    free(got);

    /* ---- round trip, several chunks; three checkpoints: the first is
     * tombstoned, the second kept as the fallback */
    fw_ckpt_kafka *k = fw_ckpt_kafka_new(s, NULL, err, sizeof err);
    CHECK(k != NULL, "%s", err);
    struct body b1 = { pattern(3500, 1), 3500 }, b2 = { pattern(5000, 2), 5000 },
                b3 = { pattern(2049, 3), 2049 };
    CHECK(write_publish(k, &b1, err, sizeof err) == 0, "b1: %s", err);
    CHECK(write_publish(k, &b2, err, sizeof err) == 0, "b2: %s", err);
    got = restore(s, &n, &rc, err, sizeof err);
    CHECK(rc == 0 && got && n == b2.n && memcmp(got, b2.p, n) == 0, "restore b2: rc=%d n=%zu",
          rc, n);
    free(got);

    /* ---- transient chunk produce errors: retried, the checkpoint completes */
    rd_kafka_mock_push_request_errors(mc, 0 /* Produce */, 3,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                      RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    CHECK(write_publish(k, &b3, err, sizeof err) == 0, "b3 through transient errors: %s", err);
    got = restore(s, &n, &rc, err, sizeof err);
    CHECK(rc == 0 && got && n == b3.n && memcmp(got, b3.p, n) == 0, "restore b3: rc=%d n=%zu",
          rc, n);
    free(got);
    /* The same, reading a tail too short to hold the checkpoint: read again
     * from the manifest's first chunk. */
    setenv("FW_TEST_STATE_TAIL_RECORDS", "6", 1);   /* the manifest, 5 tombstones */
    got = restore(s, &n, &rc, err, sizeof err);
    CHECK(rc == 0 && got && n == b3.n && memcmp(got, b3.p, n) == 0,
          "restore b3 from a short tail: rc=%d n=%zu", rc, n);
    free(got);
    unsetenv("FW_TEST_STATE_TAIL_RECORDS");
    fw_ckpt_kafka_free(k);

    /* ---- a permanent chunk produce error: the write fails, names the
     * topic, nothing is published; the restore reads b3 still */
    k = fw_ckpt_kafka_new(s, NULL, err, sizeof err);
    got = restore(s, &n, &rc, err, sizeof err);   /* learns the ids, like a restart */
    free(got);
    FILE *f = NULL;
    char where[400];
    CHECK(fw_ckpt_kafka_ops.open_latest(k, &f, where, sizeof where, err, sizeof err) == 0,
          "%s", err);
    if (f)
        fclose(f);
    struct body b4 = { pattern(4000, 4), 4000 };
    rd_kafka_mock_push_request_errors(mc, 0 /* Produce */, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    err[0] = '\0';
    rc = fw_ckpt_kafka_ops.write(k, fill, &b4, err, sizeof err);
    CHECK(rc != 0, "the write of b4 should fail");
    CHECK(strstr(err, "g1.state") && strstr(err, "writing checkpoint") &&
              strstr(err, "state.chunk_bytes"), "message: %s", err);
    fw_ckpt_kafka_ops.discard(k);
    got = restore(s, &n, &rc, err, sizeof err);
    CHECK(rc == 0 && got && n == b3.n && memcmp(got, b3.p, n) == 0,
          "after the failed write, restore b3: rc=%d n=%zu", rc, n);
    free(got);
    /* The same store goes on: the next checkpoint gets through. */
    struct body b5 = { pattern(2500, 5), 2500 };
    CHECK(write_publish(k, &b5, err, sizeof err) == 0, "b5 after a failure: %s", err);
    fw_ckpt_kafka_free(k);
    got = restore(s, &n, &rc, err, sizeof err);
    CHECK(rc == 0 && got && n == b5.n && memcmp(got, b5.p, n) == 0, "restore b5: rc=%d n=%zu",
          rc, n);
    free(got);
    free((void *)b3.p);
    b3 = b5;                    /* the newest complete one from here on */

    /* ---- errors during the restore: Fetch answered NOT_LEADER twice, the
     * coordinator loading, then moved: the restore still reads b3 */
    rd_kafka_mock_push_request_errors(mc, 1 /* Fetch */, 2,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
    rd_kafka_mock_push_request_errors(mc, 9 /* OffsetFetch */, 2,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                                      RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
    rd_kafka_mock_coordinator_set(mc, "group", "g1", 2);
    got = restore(s, &n, &rc, err, sizeof err);
    CHECK(rc == 0 && got && n == b3.n && memcmp(got, b3.p, n) == 0,
          "restore through fetch errors: rc=%d n=%zu %s", rc, n, rc ? err : "");
    free(got);

    /* ---- a forged newer manifest whose chunk is wrong: skipped */
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), NULL, 0);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    const char *man = "{\"format\":1,\"id\":\"7fffffffffffffff\",\"chunks\":1,\"bytes\":5,"
                      "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\","
                      "\"instance\":\"forged\",\"created_ms\":1}";
    rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                      RD_KAFKA_V_KEY("c/7fffffffffffffff/000000", 25),
                      RD_KAFKA_V_VALUE("five!", 5), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                      RD_KAFKA_V_END);
    rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                      RD_KAFKA_V_KEY("m/7fffffffffffffff", 18),
                      RD_KAFKA_V_VALUE((void *)man, strlen(man)),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    rd_kafka_flush(p, 10000);
    rd_kafka_destroy(p);
    got = restore(s, &n, &rc, err, sizeof err);
    CHECK(rc == 0 && got && n == b3.n && memcmp(got, b3.p, n) == 0,
          "the forged checkpoint is skipped: rc=%d n=%zu", rc, n);
    free(got);

    free((void *)b1.p);
    free((void *)b2.p);
    free((void *)b3.p);
    free((void *)b4.p);
    fw_config_free(s);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    if (failures)
        fprintf(stderr, "%d checks failed\n", failures);
    else
        printf("ckpt_kafka: all checks passed\n");
    return failures ? 1 : 0;
}

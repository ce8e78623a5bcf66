/* topic.c — create, delete and count Kafka topics for the daemon benchmark.
 *
 *   topic -b BROKERS create NAME PARTITIONS [CONFIG=VALUE]...
 *   topic -b BROKERS delete NAME...
 *   topic -b BROKERS count NAME        (prints the sum of the high watermarks)
 *
 * `create` fails if the topic exists (the benchmark wants fresh topics) and
 * waits until the new topic's partitions have leaders.  It exists because
 * scripts/kafka.sh topic cannot set topic configs (the latency run's alert
 * topic uses message.timestamp.type=LogAppendTime) and starts a JVM per call.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

static rd_kafka_event_t *wait_result(rd_kafka_queue_t *q)
{
    for (;;) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        if (!ev) {
            fputs("topic: no answer from the broker in 30 s\n", stderr);
            exit(1);
        }
        rd_kafka_event_type_t t = rd_kafka_event_type(ev);
        if (t == RD_KAFKA_EVENT_CREATETOPICS_RESULT || t == RD_KAFKA_EVENT_DELETETOPICS_RESULT)
            return ev;
        rd_kafka_event_destroy(ev);
    }
}

static int partitions_ready(rd_kafka_t *rk, const char *name, int want)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, name, NULL);
    const rd_kafka_metadata_t *md = NULL;
    int ok = 0;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == 0) {
        if (md->topic_cnt == 1 && !md->topics[0].err &&
            md->topics[0].partition_cnt == want) {
            ok = 1;
            for (int i = 0; i < want; i++)
                if (md->topics[0].partitions[i].leader < 0 || md->topics[0].partitions[i].err)
                    ok = 0;
        }
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[1], "-b") != 0) {
        fputs("usage: topic -b BROKERS create NAME PARTITIONS [CONFIG=VALUE]...\n"
              "       topic -b BROKERS delete NAME...\n"
              "       topic -b BROKERS count NAME\n",
              stderr);
        return 2;
    }
    const char *cmd = argv[3];
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", argv[2], e, sizeof e)) {
        fprintf(stderr, "topic: %s\n", e);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    if (!rk) {
        fprintf(stderr, "topic: %s\n", e);
        return 1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int rc = 0;

    if (!strcmp(cmd, "create") && argc >= 6) {
        const char *name = argv[4];
        int np = atoi(argv[5]);
        rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, np, 1, e, sizeof e);
        if (!nt) {
            fprintf(stderr, "topic: %s\n", e);
            return 2;
        }
        for (int i = 6; i < argc; i++) {
            char *eq = strchr(argv[i], '=');
            if (!eq) {
                fprintf(stderr, "topic: %s: expected CONFIG=VALUE\n", argv[i]);
                return 2;
            }
            *eq = '\0';
            rd_kafka_NewTopic_set_config(nt, argv[i], eq + 1);
        }
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        rd_kafka_event_t *ev = wait_result(q);
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        if (rd_kafka_event_error(ev)) {
            fprintf(stderr, "topic: create %s: %s\n", name, rd_kafka_event_error_string(ev));
            rc = 1;
        }
        for (size_t i = 0; i < n; i++)
            if (rd_kafka_topic_result_error(res[i])) {
                fprintf(stderr, "topic: create %s: %s\n", rd_kafka_topic_result_name(res[i]),
                        rd_kafka_topic_result_error_string(res[i]));
                rc = 1;
            }
        rd_kafka_event_destroy(ev);
        rd_kafka_NewTopic_destroy(nt);
        for (int tries = 0; rc == 0 && !partitions_ready(rk, name, np); tries++) {
            if (tries == 100) {
                fprintf(stderr, "topic: %s: partitions have no leader after 10 s\n", name);
                rc = 1;
            }
            usleep(100000);
        }
    } else if (!strcmp(cmd, "delete")) {
        int nd = argc - 4;
        rd_kafka_DeleteTopic_t **dt = calloc((size_t)nd, sizeof *dt);
        for (int i = 0; i < nd; i++)
            dt[i] = rd_kafka_DeleteTopic_new(argv[4 + i]);
        rd_kafka_DeleteTopics(rk, dt, (size_t)nd, NULL, q);
        rd_kafka_event_t *ev = wait_result(q);
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
        for (size_t i = 0; i < n; i++)
            if (rd_kafka_topic_result_error(res[i]) &&
                rd_kafka_topic_result_error(res[i]) != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                fprintf(stderr, "topic: delete %s: %s\n", rd_kafka_topic_result_name(res[i]),
                        rd_kafka_topic_result_error_string(res[i]));
                rc = 1;
            }
        rd_kafka_event_destroy(ev);
        rd_kafka_DeleteTopic_destroy_array(dt, (size_t)nd);
        free(dt);
    } else if (!strcmp(cmd, "count")) {
        const char *name = argv[4];
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, name, NULL);
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        if (err || md->topic_cnt != 1 || md->topics[0].err) {
            fprintf(stderr, "topic: count %s: %s\n", name,
                    rd_kafka_err2str(err ? err : md->topics[0].err));
            return 1;
        }
        int64_t total = 0;
        for (int i = 0; i < md->topics[0].partition_cnt; i++) {
            int64_t lo, hi;
            err = rd_kafka_query_watermark_offsets(rk, name, md->topics[0].partitions[i].id,
                                                   &lo, &hi, 10000);
            if (err) {
                fprintf(stderr, "topic: count %s: %s\n", name, rd_kafka_err2str(err));
                return 1;
            }
            total += hi - lo;
        }
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        printf("%" PRId64 "\n", total);
    } else {
        fprintf(stderr, "topic: unknown command or missing arguments: %s\n", cmd);
        rc = 2;
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

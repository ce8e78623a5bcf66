/* latency.c — event-to-alert latency from the alert topic and loadgen's side file.
 *
 *   latency -b BROKERS -t ALERT_TOPIC --side FILE [--timeout-ms MS] [--csv FILE]
 *
 * Reads every message of ALERT_TOPIC from the beginning to the current end
 * (all partitions, no consumer group commits), takes from each alert its
 * `event_id` (cJSON) and the message timestamp — LogAppendTime when the
 * topic is configured so (the broker's clock when the alert was appended),
 * else CreateTime (the daemon's clock when it produced the alert) — and
 * subtracts the send timestamp loadgen recorded for that event_id in its
 * side file ("event_id<TAB>send_ts_ms" lines; the same value loadgen gave the
 * input message as its CreateTime).  Broker, daemon and loadgen share one
 * machine, so they share one clock.
 *
 * Prints the count, the timestamp type, and min / p50 / p90 / p95 / p99 /
 * p99.9 / max / mean in ms (nearest-rank percentiles), plus alerts whose
 * event_id is not in the side file.  --csv writes one
 * "event_id,rule_id,send_ts,alert_ts,latency_ms" line per alert.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

struct alert {
    char event_id[64];
    char rule_id[32];
    int64_t alert_ts;
    int64_t send_ts; /* -1: not found */
};

static struct alert *alerts;
static size_t nalerts, cap;

/* Open-addressing index: event_id -> the alerts with it (chained by `next`). */
static int64_t *slot_first; /* alert index, -1 empty */
static int64_t *next_same;
static size_t nslots;

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

static void build_index(void)
{
    nslots = 16;
    while (nslots < nalerts * 2 + 2)
        nslots <<= 1;
    slot_first = malloc(nslots * sizeof *slot_first);
    next_same = malloc((nalerts ? nalerts : 1) * sizeof *next_same);
    for (size_t i = 0; i < nslots; i++)
        slot_first[i] = -1;
    for (size_t i = 0; i < nalerts; i++) {
        const char *id = alerts[i].event_id;
        size_t s = hash(id, strlen(id)) & (nslots - 1);
        while (slot_first[s] >= 0 && strcmp(alerts[slot_first[s]].event_id, id) != 0)
            s = (s + 1) & (nslots - 1);
        next_same[i] = slot_first[s];
        slot_first[s] = (int64_t)i;
    }
}

static int64_t lookup(const char *id, size_t n)
{
    size_t s = hash(id, n) & (nslots - 1);
    while (slot_first[s] >= 0) {
        const char *e = alerts[slot_first[s]].event_id;
        if (strlen(e) == n && memcmp(e, id, n) == 0)
            return slot_first[s];
        s = (s + 1) & (nslots - 1);
    }
    return -1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t pct(const int64_t *v, size_t n, double p)
{
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = NULL, *side_path = NULL, *csv_path = NULL;
    int timeout_ms = 30000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-b"))
            brokers = argv[i + 1];
        else if (!strcmp(argv[i], "-t"))
            topic = argv[i + 1];
        else if (!strcmp(argv[i], "--side"))
            side_path = argv[i + 1];
        else if (!strcmp(argv[i], "--csv"))
            csv_path = argv[i + 1];
        else if (!strcmp(argv[i], "--timeout-ms"))
            timeout_ms = atoi(argv[i + 1]);
        else
            break;
    }
    if (!brokers || !topic || !side_path) {
        fputs("usage: latency -b BROKERS -t ALERT_TOPIC --side FILE [--timeout-ms MS]"
              " [--csv FILE]\n",
              stderr);
        return 2;
    }

    char e[512];
    char group[64];
    snprintf(group, sizeof group, "fw-bench-latency-%ld", (long)time(NULL));
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, e, sizeof e) ||
        rd_kafka_conf_set(c, "group.id", group, e, sizeof e) ||
        rd_kafka_conf_set(c, "enable.auto.commit", "false", e, sizeof e) ||
        rd_kafka_conf_set(c, "enable.partition.eof", "true", e, sizeof e)) {
        fprintf(stderr, "latency: %s\n", e);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e);
    if (!rk) {
        fprintf(stderr, "latency: %s\n", e);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "latency: metadata of %s: %s\n", topic,
                rd_kafka_err2str(err ? err : md->topics[0].err));
        return 1;
    }
    int np = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *asg = rd_kafka_topic_partition_list_new(np);
    int eofs_needed = 0;
    for (int i = 0; i < np; i++) {
        int64_t lo, hi;
        int32_t pid = md->topics[0].partitions[i].id;
        if (rd_kafka_query_watermark_offsets(rk, topic, pid, &lo, &hi, 10000) == 0 && hi > lo) {
            rd_kafka_topic_partition_list_add(asg, topic, pid)->offset = RD_KAFKA_OFFSET_BEGINNING;
            eofs_needed++;
        }
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (eofs_needed)
        rd_kafka_assign(rk, asg);
    rd_kafka_topic_partition_list_destroy(asg);

    int tstype_seen = -1;
    uint64_t bad = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (eofs_needed > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms) {
            fprintf(stderr, "latency: timed out reading %s\n", topic);
            break;
        }
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs_needed--;
        } else if (m->err) {
            fprintf(stderr, "latency: %s\n", rd_kafka_message_errstr(m));
        } else {
            rd_kafka_timestamp_type_t tt;
            int64_t ts = rd_kafka_message_timestamp(m, &tt);
            tstype_seen = (int)tt;
            cJSON *j = cJSON_ParseWithLength(m->payload, m->len);
            const cJSON *id = j ? cJSON_GetObjectItemCaseSensitive(j, "event_id") : NULL;
            const cJSON *rule = j ? cJSON_GetObjectItemCaseSensitive(j, "rule_id") : NULL;
            if (!cJSON_IsString(id) || strlen(id->valuestring) >= sizeof alerts->event_id) {
                bad++;
            } else {
                if (nalerts == cap) {
                    cap = cap ? cap * 2 : 1024;
                    alerts = realloc(alerts, cap * sizeof *alerts);
                    if (!alerts)
                        return 1;
                }
                struct alert *a = &alerts[nalerts++];
                snprintf(a->event_id, sizeof a->event_id, "%s", id->valuestring);
                snprintf(a->rule_id, sizeof a->rule_id, "%s",
                         cJSON_IsString(rule) ? rule->valuestring : "?");
                a->alert_ts = ts;
                a->send_ts = -1;
            }
            cJSON_Delete(j);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);

    build_index();
    FILE *side = fopen(side_path, "r");
    if (!side) {
        perror(side_path);
        return 1;
    }
    char line[256];
    uint64_t side_lines = 0;
    while (fgets(line, sizeof line, side)) {
        char *tab = strchr(line, '\t');
        side_lines++;
        if (!tab)
            continue;
        int64_t ix = lookup(line, (size_t)(tab - line));
        int64_t ts = strtoll(tab + 1, NULL, 10);
        for (; ix >= 0; ix = next_same[ix])
            if (alerts[ix].send_ts < 0)
                alerts[ix].send_ts = ts;
    }
    fclose(side);

    FILE *csv = csv_path ? fopen(csv_path, "w") : NULL;
    if (csv)
        fputs("event_id,rule_id,send_ts,alert_ts,latency_ms\n", csv);
    int64_t *lat = malloc((nalerts ? nalerts : 1) * sizeof *lat);
    size_t n = 0, missing = 0;
    double sum = 0;
    for (size_t i = 0; i < nalerts; i++) {
        if (alerts[i].send_ts < 0) {
            missing++;
            continue;
        }
        lat[n] = alerts[i].alert_ts - alerts[i].send_ts;
        sum += (double)lat[n];
        if (csv)
            fprintf(csv, "%s,%s,%" PRId64 ",%" PRId64 ",%" PRId64 "\n", alerts[i].event_id,
                    alerts[i].rule_id, alerts[i].send_ts, alerts[i].alert_ts, lat[n]);
        n++;
    }
    if (csv)
        fclose(csv);
    qsort(lat, n, sizeof *lat, cmp_i64);
    const char *tsname = tstype_seen == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? "LogAppendTime"
                         : tstype_seen == RD_KAFKA_TIMESTAMP_CREATE_TIME ? "CreateTime"
                                                                           : "none";
    printf("latency: %zu alerts read from %s (timestamps: %s), %zu matched to %" PRIu64
           " side-file events, %zu not found, %" PRIu64 " unparsable\n",
           nalerts, topic, tsname, n, side_lines, missing, bad);
    if (n)
        printf("latency: ms  min %" PRId64 "  p50 %" PRId64 "  p90 %" PRId64 "  p95 %" PRId64
               "  p99 %" PRId64 "  p99.9 %" PRId64 "  max %" PRId64 "  mean %.1f  (n=%zu)\n",
               lat[0], pct(lat, n, 50), pct(lat, n, 90), pct(lat, n, 95), pct(lat, n, 99),
               pct(lat, n, 99.9), lat[n - 1], sum / (double)n, n);
    free(lat);
    free(alerts);
    free(slot_first);
    free(next_same);
    return n ? 0 : 1;
}

/* cli_state.c — `fraudwatch state init|status`: the state topic and the
 * active/standby election seen from an operator's shell (docs/scaling.md).
 *
 *   state init -c FILE     creates the state topic (and, with ha.mode =
 *                          standby, the control topic) with their configs;
 *                          nothing if they exist.
 *   state status -c FILE   the checkpoints in the state topic (newest first:
 *                          id, daemon, age, size, complete or not), which
 *                          daemon is active and which stand by (the control
 *                          group's members), and what a takeover now would
 *                          replay (the input's high watermarks less the
 *                          group's committed positions, which are the last
 *                          published checkpoint's).
 * Reads the same config file as `fraudwatch run`; exit 0, 1 on an error
 * (a missing topic says how to create it), 2 on a usage error. */
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt_kafka.h"
#include "election.h"
#include "fraudwatch/config.h"
#include "kafka.h"
#include "repart.h"
#include "scale.h"

int fw_cli_state(int argc, char **argv);

static const char usage[] =
    "usage: fraudwatch state init -c FILE [--set KEY=VALUE]...\n"
    "       fraudwatch state status -c FILE [--set KEY=VALUE]...\n"
    "\n"
    "The checkpoints in Kafka (state.store = kafka), the active/standby\n"
    "election (ha.mode = standby) and the owners of the repartition partitions\n"
    "(ha.mode = scaleout); FILE is the daemon's config file.\n"
    "  init    create the state topic (compacted, one partition) and, with\n"
    "          ha.mode = standby, the control topic; with ha.mode = scaleout the\n"
    "          repartition, state and control topics (scale.partitions each);\n"
    "          nothing if they exist\n"
    "  status  checkpoints in the state topic (newest first), the active daemon\n"
    "          and the standbys, and the input a takeover now would replay; with\n"
    "          ha.mode = scaleout, per repartition partition: its owner, its\n"
    "          newest checkpoint's age and size, and its lag\n"
    "See docs/scaling.md.\n";

static fw_settings *load(const char *file, char **sets, int nsets, char *err, size_t errlen)
{
    fw_settings *s = fw_config_new();
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (fw_config_load_file(s, file, err, errlen) != 0)
        goto bad;
    for (int i = 0; i < nsets; i++) {
        char *eq = strchr(sets[i], '=');
        if (!eq) {
            snprintf(err, errlen, "--set: expected KEY=VALUE");
            goto bad;
        }
        *eq = '\0';
        char origin[300];
        snprintf(origin, sizeof origin, "--set %.200s", sets[i]);
        int rc = fw_config_set(s, sets[i], eq + 1, origin, err, errlen);
        *eq = '=';
        if (rc != 0)
            goto bad;
    }
    if (fw_config_validate(s, err, errlen) != 0)
        goto bad;
    return s;
bad:
    fw_config_free(s);
    return NULL;
}

static int cmd_init(const fw_settings *s)
{
    char err[2048], topic[300];
    bool created;
    if (strcmp(s->ha_mode, "scaleout") == 0) {
        char r[300], st[300], c[300];
        fw_scale_topics(s, r, st, c, sizeof r);
        if (fw_scale_topics_init(s, err, sizeof err) != 0) {
            fprintf(stderr, "fraudwatch state init: %s\n", err);
            return 1;
        }
        printf("repartition topic %s, state topic %s (compacted), control topic %s: "
               "%d partitions each (created if they were missing)\n", r, st, c,
               s->scale_partitions);
        return 0;
    }
    fw_ckpt_kafka_topic(s, topic, sizeof topic);
    if (fw_ckpt_kafka_init(s, &created, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch state init: %s\n", err);
        return 1;
    }
    printf("state topic %s: %s (1 partition, cleanup.policy=compact)\n", topic,
           created ? "created" : "exists");
    if (strcmp(s->ha_mode, "standby") == 0) {
        fw_election_topic(s, topic, sizeof topic);
        if (fw_kafka_ensure_topic(s, topic, false, &created, err, sizeof err) != 0) {
            fprintf(stderr, "fraudwatch state init: %s\n", err);
            return 1;
        }
        printf("control topic %s: %s (1 partition)\n", topic, created ? "created" : "exists");
    }
    return 0;
}

/* Whether a member's assignment (ConsumerProtocol Assignment bytes) holds
 * a partition. */
static bool holds_partition(const unsigned char *p, size_t n)
{
    size_t i = 2;                               /* version */
    if (n < i + 4)
        return false;
    int32_t topics = (int32_t)((uint32_t)p[i] << 24 | (uint32_t)p[i + 1] << 16 |
                               (uint32_t)p[i + 2] << 8 | p[i + 3]);
    i += 4;
    for (int32_t t = 0; t < topics; t++) {
        if (n < i + 2)
            return false;
        size_t len = (size_t)(p[i] << 8 | p[i + 1]);
        i += 2 + len;
        if (n < i + 4)
            return false;
        int32_t parts = (int32_t)((uint32_t)p[i] << 24 | (uint32_t)p[i + 1] << 16 |
                                  (uint32_t)p[i + 2] << 8 | p[i + 3]);
        if (parts > 0)
            return true;
        i += 4;
    }
    return false;
}

static rd_kafka_t *admin_client(const fw_settings *s, const char *group, char *err,
                                size_t errlen)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (fw_kafka_set(c, "status client", "bootstrap.servers", s->brokers, err, errlen) ||
        (group && fw_kafka_set(c, "status client", "group.id", group, err, errlen))) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    for (size_t i = 0; i < s->nconsumer; i++)
        if (fw_kafka_set(c, "status client", s->consumer_keys[i], s->consumer_values[i], err,
                         errlen)) {
            rd_kafka_conf_destroy(c);
            return NULL;
        }
    rd_kafka_conf_set_log_cb(c, fw_kafka_log);
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e);
    if (!rk) {
        snprintf(err, errlen, "cannot create a Kafka client: %s", e);
        rd_kafka_conf_destroy(c);
    }
    return rk;
}

static int32_t be32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

/* The partitions a member's assignment (ConsumerProtocol Assignment bytes)
 * holds, into owner[p] = member (partitions < n). */
static void assigned_parts(const unsigned char *p, size_t n, int member, int *owner,
                           int32_t nparts)
{
    size_t i = 2;                               /* version */
    if (n < i + 4)
        return;
    int32_t topics = be32(p + i);
    i += 4;
    for (int32_t t = 0; t < topics; t++) {
        if (n < i + 2)
            return;
        size_t len = (size_t)(p[i] << 8 | p[i + 1]);
        i += 2 + len;
        if (n < i + 4)
            return;
        int32_t parts = be32(p + i);
        i += 4;
        for (int32_t k = 0; k < parts; k++) {
            if (n < i + 4)
                return;
            int32_t q = be32(p + i);
            i += 4;
            if (q >= 0 && q < nparts)
                owner[q] = member;
        }
    }
}

/* ha.mode = scaleout: per repartition partition, its owner, its newest
 * checkpoint and how far its unit is behind. */
static int show_scale(const fw_settings *s)
{
    char r[300], st[300], c[300], err[1024], group[1100], units[1100];
    fw_scale_topics(s, r, st, c, sizeof r);
    snprintf(group, sizeof group, "%s.scale-control", s->group_id);
    snprintf(units, sizeof units, "%s.scale-units", s->group_id);
    int32_t np = s->scale_partitions;
    int *owner = calloc((size_t)np, sizeof *owner);
    char **names = NULL;
    int nnames = 0;
    for (int32_t p = 0; p < np; p++)
        owner[p] = -1;
    rd_kafka_t *rk = admin_client(s, units, err, sizeof err);
    if (!rk) {
        printf("scale-out: %s\n", err);
        free(owner);
        return 1;
    }
    const struct rd_kafka_group_list *gl = NULL;
    rd_kafka_resp_err_t e = rd_kafka_list_groups(rk, group, &gl, 10000);
    if (e || !gl || gl->group_cnt < 1) {
        printf("control group %s: %s\n", group,
               e ? rd_kafka_err2str(e) : "not found (no daemon with ha.mode = scaleout running)");
    } else {
        const struct rd_kafka_group_info *g = &gl->groups[0];
        printf("control group %s (%s, %d daemons)\n", group, g->state, g->member_cnt);
        names = calloc((size_t)g->member_cnt + 1, sizeof *names);
        for (int i = 0; i < g->member_cnt; i++) {
            const struct rd_kafka_group_member_info *m = &g->members[i];
            names[nnames++] = strdup(m->client_id ? m->client_id : "?");
            assigned_parts(m->member_assignment, (size_t)m->member_assignment_size, i, owner,
                           np);
        }
    }
    if (gl)
        rd_kafka_group_list_destroy(gl);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int32_t p = 0; p < np; p++)
        rd_kafka_topic_partition_list_add(l, r, p);
    bool have_committed = rd_kafka_committed(rk, l, 10000) == 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    printf("repartition topic %s, state topic %s:\n", r, st);
    printf("  %-9s  %-24s  %12s  %12s  %12s  %s\n", "PARTITION", "OWNER", "CKPT_AGE_S",
           "CKPT_BYTES", "LAG", "CHECKPOINTS");
    int rc = 0;
    for (int32_t p = 0; p < np; p++) {
        fw_ckpt_info info[8];
        size_t n = 0;
        char age[32] = "-", bytes[32] = "-", lag[32] = "-", ck[128];
        if (fw_ckpt_kafka_scan_part(s, st, p, np, info, 8, &n, err, sizeof err) != 0) {
            snprintf(ck, sizeof ck, "%.100s", err);
            rc = 1;
        } else {
            size_t complete = 0;
            const fw_ckpt_info *newest = NULL;
            for (size_t i = 0; i < n; i++)
                if (info[i].complete) {
                    complete++;
                    if (!newest)
                        newest = &info[i];
                }
            if (newest) {
                snprintf(age, sizeof age, "%.1f",
                         newest->created_ms ? (double)(now - newest->created_ms) / 1000.0 : -1.0);
                snprintf(bytes, sizeof bytes, "%" PRIu64, newest->bytes);
            }
            snprintf(ck, sizeof ck, "%zu complete, %zu other", complete, n - complete);
        }
        int64_t lo, hi;
        if (have_committed &&
            rd_kafka_query_watermark_offsets(rk, r, p, &lo, &hi, 10000) == 0) {
            int64_t at = l->elems[p].offset >= 0 ? l->elems[p].offset : lo;
            snprintf(lag, sizeof lag, "%" PRId64, hi > at ? hi - at : 0);
        }
        printf("  %-9d  %-24s  %12s  %12s  %12s  %s\n", (int)p,
               owner[p] >= 0 && owner[p] < nnames ? names[owner[p]] : "(none)", age, bytes, lag,
               ck);
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    for (int i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    free(owner);
    return rc;
}

static void show_roles(const fw_settings *s)
{
    char group[1100], err[512];
    fw_election_group(s, group, sizeof group);
    rd_kafka_t *rk = admin_client(s, NULL, err, sizeof err);
    if (!rk) {
        printf("roles: %s\n", err);
        return;
    }
    const struct rd_kafka_group_list *gl = NULL;
    rd_kafka_resp_err_t r = rd_kafka_list_groups(rk, group, &gl, 10000);
    if (r || !gl || gl->group_cnt < 1) {
        printf("roles: control group %s: %s\n", group,
               r ? rd_kafka_err2str(r) : "not found (no daemon with ha.mode = standby running)");
    } else {
        const struct rd_kafka_group_info *g = &gl->groups[0];
        printf("control group %s (%s, %d members):\n", group, g->state, g->member_cnt);
        if (g->member_cnt == 0)
            printf("  no daemon running\n");
        for (int i = 0; i < g->member_cnt; i++) {
            const struct rd_kafka_group_member_info *m = &g->members[i];
            bool active = holds_partition(m->member_assignment, (size_t)m->member_assignment_size);
            printf("  %-8s %s (%s)\n", active ? "active" : "standby", m->client_id,
                   m->client_host);
        }
    }
    if (gl)
        rd_kafka_group_list_destroy(gl);
    rd_kafka_destroy(rk);
}

/* High watermark less committed position, over the input partitions. */
static void show_replay(const fw_settings *s)
{
    char err[512];
    rd_kafka_t *rk = admin_client(s, s->group_id, err, sizeof err);
    if (!rk) {
        printf("input: %s\n", err);
        return;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (size_t i = 0; i < s->ninput_topics; i++) {
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, s->input_topics[i], NULL);
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, t, &md, 10000) == 0) {
            if (md->topic_cnt == 1 && !md->topics[0].err)
                for (int p = 0; p < md->topics[0].partition_cnt; p++)
                    rd_kafka_topic_partition_list_add(l, s->input_topics[i],
                                                      md->topics[0].partitions[p].id);
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(t);
    }
    int64_t total = 0;
    bool none = true;
    if (l->cnt && rd_kafka_committed(rk, l, 10000) == 0) {
        for (int i = 0; i < l->cnt; i++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(rk, l->elems[i].topic, l->elems[i].partition,
                                                 &lo, &hi, 10000))
                continue;
            int64_t from = l->elems[i].offset >= 0 ? l->elems[i].offset : lo;
            if (l->elems[i].offset >= 0)
                none = false;
            total += hi > from ? hi - from : 0;
        }
    }
    printf("input (group %s): %s; a takeover now replays %" PRId64 " messages from the "
           "committed positions\n", s->group_id, none ? "nothing committed yet" : "committed",
           total);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

static int cmd_status(const fw_settings *s)
{
    char err[2048], topic[300];
    fw_ckpt_kafka_topic(s, topic, sizeof topic);
    fw_ckpt_info info[32];
    size_t n;
    int rc = 0;
    printf("state.store = %s\n", s->state_store);
    if (strcmp(s->ha_mode, "scaleout") == 0) {
        printf("ha.mode = scaleout: %d repartition partitions\n", s->scale_partitions);
        rc = show_scale(s);
        show_replay(s);
        return rc;
    }
    if (fw_ckpt_kafka_scan(s, info, sizeof info / sizeof info[0], &n, err, sizeof err) != 0) {
        printf("state topic %s: %s\n", topic, err);
        rc = 1;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        printf("state topic %s: %zu checkpoint%s\n", topic, n, n == 1 ? "" : "s");
        printf("  %-16s  %-24s  %9s  %12s  %9s  %s\n", "ID", "DAEMON", "AGE_S", "BYTES",
               "CHUNKS", "STATUS");
        bool restore_marked = false;
        for (size_t i = 0; i < n; i++) {
            const fw_ckpt_info *c = &info[i];
            char age[32] = "-";
            if (c->created_ms)
                snprintf(age, sizeof age, "%.1f", (double)(now - c->created_ms) / 1000.0);
            const char *st = c->complete ? (restore_marked ? "complete" : "complete (restored "
                                                                          "on takeover)")
                                         : c->manifest ? "INCOMPLETE (skipped)"
                                                       : "no manifest (write in progress or "
                                                         "torn)";
            if (c->complete)
                restore_marked = true;
            printf("  %016" PRIx64 "  %-24s  %9s  %12" PRIu64 "  %4u/%-4u  %s\n", c->id,
                   c->instance[0] ? c->instance : "-", age, c->bytes, c->chunks_present,
                   c->chunks, st);
        }
    }
    if (strcmp(s->ha_mode, "standby") == 0)
        show_roles(s);
    else
        printf("ha.mode = off: one daemon per partition set, no standby\n");
    show_replay(s);
    return rc;
}

int fw_cli_state(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "init") != 0 && strcmp(sub, "status") != 0) {
        fprintf(stderr, "fraudwatch state: unknown subcommand '%s'\n", sub);
        fputs(usage, stderr);
        return 2;
    }
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "set", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *file = NULL;
    char **sets = calloc((size_t)argc, sizeof *sets);
    int nsets = 0, c;
    optind = 1;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 's': sets[nsets++] = optarg; break;
        case 'h':
            fputs(usage, stdout);
            free(sets);
            return 0;
        default:
            fputs(usage, stderr);
            free(sets);
            return 2;
        }
    }
    if (!file || optind != argc) {
        fprintf(stderr, "fraudwatch state %s: %s\n", sub,
                file ? "unexpected argument" : "-c FILE is required");
        fputs(usage, stderr);
        free(sets);
        return 2;
    }
    char err[4096];
    fw_settings *s = load(file, sets, nsets, err, sizeof err);
    free(sets);
    if (!s) {
        fprintf(stderr, "fraudwatch state %s: %s\n", sub, err);
        return 1;
    }
    int rc = strcmp(sub, "init") == 0 ? cmd_init(s) : cmd_status(s);
    fw_config_free(s);
    return rc;
}

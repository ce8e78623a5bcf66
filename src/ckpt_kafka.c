/* ckpt_kafka.c — checkpoints in a compacted state topic of the group
 * (`state.store = kafka`), so that any daemon of the group, on any machine,
 * can restore the windows of the last one (docs/scaling.md).
 *
 * Owns the state topic: its creation with the configs compaction needs,
 * the write of a checkpoint as chunks and a manifest, the tombstones of
 * old ones, and the restore of the newest complete one.  It is a store
 * behind the driver's checkpoint protocol (ckpt_store.h): the driver still
 * cuts, encodes and decides when to publish; only where the bytes go
 * differs from the local file.
 *
 * Records (one partition, compacted, keys are text):
 *   c/<id:16 hex>/<seq:6 digits>  one chunk of checkpoint <id>'s body
 *                                 (the same bytes as the local file), at
 *                                 most state.chunk_bytes each;
 *   m/<id:16 hex>                 the manifest: JSON naming the chunk count,
 *                                 the byte count and the body's SHA-256.
 * write() produces the chunks and waits for every acknowledgement (the
 * body is durable aside, like checkpoint.tmp); publish() produces the
 * manifest (like the rename); then every older checkpoint but the previous
 * one is tombstoned (its chunks and manifest), so compaction frees them
 * and the topic holds about two checkpoints.  A daemon killed between the
 * two leaves chunks without a manifest: never restored.  A manifest whose
 * chunks are not all there or do not add up to its checksum (a torn or
 * tampered checkpoint) is skipped with a warning, and the one before it is
 * restored.  Ids are max(wall-clock microseconds, last id seen + 1), so
 * they grow across daemons and restarts; the newest is the highest.
 *
 * Why a manifest and not one record: a checkpoint of millions of keys is
 * hundreds of MiB, far above a broker's message size limit; chunks keep
 * every record under it, and the manifest is the single small record whose
 * presence makes the whole set valid (the rename of the local store).
 *
 * A state topic that is missing, or holds no complete checkpoint, while
 * the consumer group has committed positions means the state that goes
 * with those positions is gone (a topic deleted by mistake): the daemon
 * refuses to start, saying so, unless state.on_lost = empty, which starts
 * from the committed positions with empty windows and says it loudly.
 *
 * Threads: write/publish/discard run on the checkpoint writer's thread and
 * are the only users of the producer after the start; open_latest runs on
 * the driver's thread before the first write.  The body is cut into chunks
 * as the encoder writes it: the writer holds one chunk and at most
 * MAX_CHUNKS_IN_FLIGHT unacknowledged ones, not the whole checkpoint.
 * FW_TEST_CHECKPOINT_STALL_MS (tests only) sleeps that long after the first
 * chunk is acknowledged, so a test can kill -9 the daemon
 * mid-write; FW_TEST_STATE_TAIL_RECORDS (tests only) shortens the tail a
 * restore reads first, so that the second read (from the newest manifest's
 * first chunk) is exercised. */
#include "ckpt_kafka.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "kafka.h"
#include "sha256.h"

#define META_TIMEOUT_MS 10000
#define WRITE_TIMEOUT_MS 60000     /* message.timeout.ms of the state producer */
#define READ_STALL_MS 30000        /* a restore read that gets nothing this long fails */
#define TAIL_RECORDS 4096          /* a restore reads this many last records first */

/* ---- what a scan of the topic finds ---------------------------------------- */

struct ckrec {
    uint64_t id;
    bool manifest;
    uint32_t nchunks;
    uint64_t bytes;
    char sha[65];
    char instance[128];
    int64_t created_ms;
    int64_t first_offset;    /* of chunk 0, from the manifest; -1: not given */
    int64_t man_offset;      /* of the manifest record */
    char **chunk;            /* by seq; NULL: absent */
    size_t *clen;
    uint32_t cap;
};

struct scan {
    struct ckrec *v;
    size_t n, cap;
};

static struct ckrec *rec_of(struct scan *sc, uint64_t id)
{
    for (size_t i = 0; i < sc->n; i++)
        if (sc->v[i].id == id)
            return &sc->v[i];
    if (sc->n == sc->cap) {
        sc->cap = sc->cap ? sc->cap * 2 : 8;
        sc->v = fw_xrealloc(sc->v, sc->cap * sizeof *sc->v);
    }
    struct ckrec *r = &sc->v[sc->n++];
    memset(r, 0, sizeof *r);
    r->id = id;
    return r;
}

static void scan_free(struct scan *sc)
{
    for (size_t i = 0; i < sc->n; i++) {
        for (uint32_t j = 0; j < sc->v[i].cap; j++)
            free(sc->v[i].chunk[j]);
        free(sc->v[i].chunk);
        free(sc->v[i].clen);
    }
    free(sc->v);
    memset(sc, 0, sizeof *sc);
}

static uint32_t chunks_present(const struct ckrec *r)
{
    uint32_t n = 0;
    for (uint32_t j = 0; j < r->cap; j++)
        n += r->chunk[j] != NULL;
    return n;
}

static void parse_manifest(struct ckrec *r, const char *v, size_t len)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(v, len, &end, false);
    r->manifest = false;
    if (!j)
        return;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "chunks");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "bytes");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "sha256");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(j, "instance");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "created_ms");
    if (cJSON_IsNumber(n) && n->valuedouble >= 1 && n->valuedouble <= 1e7 && cJSON_IsNumber(b) &&
        b->valuedouble >= 0 && cJSON_IsString(h) && strlen(h->valuestring) == 64) {
        r->manifest = true;
        r->nchunks = (uint32_t)n->valuedouble;
        r->bytes = (uint64_t)b->valuedouble;
        snprintf(r->sha, sizeof r->sha, "%s", h->valuestring);
        snprintf(r->instance, sizeof r->instance, "%s",
                 cJSON_IsString(in) ? in->valuestring : "");
        r->created_ms = cJSON_IsNumber(c) ? (int64_t)c->valuedouble : 0;
        const cJSON *fo = cJSON_GetObjectItemCaseSensitive(j, "first_offset");
        r->first_offset = cJSON_IsNumber(fo) ? (int64_t)fo->valuedouble : -1;
    }
    cJSON_Delete(j);
}

/* One record of the topic into the scan (value NULL: a tombstone). */
static void scan_record(struct scan *sc, const char *key, size_t klen, const char *v, size_t len,
                        int64_t offset)
{
    char k[64];
    if (klen >= sizeof k)
        return;
    memcpy(k, key, klen);
    k[klen] = '\0';
    unsigned long long id;
    unsigned seq;
    char tail;
    if (sscanf(k, "c/%16llx/%6u%c", &id, &seq, &tail) == 2) {
        if (seq >= 10000000)
            return;
        struct ckrec *r = rec_of(sc, id);
        if (seq >= r->cap) {
            uint32_t cap = r->cap ? r->cap : 4;
            while (cap <= seq)
                cap *= 2;
            r->chunk = fw_xrealloc(r->chunk, cap * sizeof *r->chunk);
            r->clen = fw_xrealloc(r->clen, cap * sizeof *r->clen);
            memset(r->chunk + r->cap, 0, (cap - r->cap) * sizeof *r->chunk);
            memset(r->clen + r->cap, 0, (cap - r->cap) * sizeof *r->clen);
            r->cap = cap;
        }
        free(r->chunk[seq]);
        r->chunk[seq] = NULL;
        r->clen[seq] = 0;
        if (v) {
            r->chunk[seq] = fw_xmalloc(len ? len : 1);
            memcpy(r->chunk[seq], v, len);
            r->clen[seq] = len;
        }
    } else if (sscanf(k, "m/%16llx%c", &id, &tail) == 1) {
        struct ckrec *r = rec_of(sc, id);
        if (v)
            parse_manifest(r, v, len);
        else
            r->manifest = false;
        r->man_offset = offset;
    }
}

/* Every chunk there, the sizes and the checksum right: "" or what is wrong. */
static const char *incomplete(const struct ckrec *r, char *why, size_t whylen)
{
    if (!r->manifest) {
        snprintf(why, whylen, "chunks without a manifest (a write that never finished)");
        return why;
    }
    uint64_t total = 0;
    fw_sha256 h;
    fw_sha256_init(&h);
    for (uint32_t j = 0; j < r->nchunks; j++) {
        if (j >= r->cap || !r->chunk[j]) {
            snprintf(why, whylen, "chunk %u of %u missing", j, r->nchunks);
            return why;
        }
        total += r->clen[j];
        fw_sha256_update(&h, r->chunk[j], r->clen[j]);
    }
    if (total != r->bytes) {
        snprintf(why, whylen, "%" PRIu64 " bytes, the manifest says %" PRIu64, total, r->bytes);
        return why;
    }
    unsigned char d[32];
    fw_sha256_final(&h, d);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    if (strcmp(hex, r->sha) != 0) {
        snprintf(why, whylen, "checksum mismatch (torn or altered chunks)");
        return why;
    }
    why[0] = '\0';
    return why;
}

static int cmp_newest(const void *a, const void *b)
{
    uint64_t x = ((const struct ckrec *)a)->id, y = ((const struct ckrec *)b)->id;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* ---- Kafka plumbing ------------------------------------------------------- */

void fw_ckpt_kafka_topic(const fw_settings *s, char *out, size_t outlen)
{
    if (s->state_topic && *s->state_topic)
        snprintf(out, outlen, "%s", s->state_topic);
    else
        snprintf(out, outlen, "%s.state", s->group_id);
}

static rd_kafka_t *client(const fw_settings *s, rd_kafka_type_t type, const char *group,
                          char *err, size_t errlen)
{
    const char *who = type == RD_KAFKA_PRODUCER ? "state producer" : "state consumer";
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (fw_kafka_set(c, who, "bootstrap.servers", s->brokers, err, errlen))
        goto fail;
    /* The operator's pass-through keys (security, timeouts) apply here too;
     * then what the state topic needs. */
    size_t n = type == RD_KAFKA_PRODUCER ? s->nproducer : s->nconsumer;
    char **keys = type == RD_KAFKA_PRODUCER ? s->producer_keys : s->consumer_keys;
    char **vals = type == RD_KAFKA_PRODUCER ? s->producer_values : s->consumer_values;
    for (size_t i = 0; i < n; i++)
        if (fw_kafka_set(c, who, keys[i], vals[i], err, errlen))
            goto fail;
    if (fw_kafka_set(c, who, "client.id", s->instance_id && *s->instance_id ? s->instance_id
                                                                             : "fraudwatch",
                     err, errlen))
        goto fail;
    if (type == RD_KAFKA_PRODUCER) {
        char mmb[32];
        snprintf(mmb, sizeof mmb, "%zu", s->state_chunk_bytes + 65536);
        char tmo[32];
        snprintf(tmo, sizeof tmo, "%d", WRITE_TIMEOUT_MS);
        if (fw_kafka_set(c, who, "enable.idempotence", "true", err, errlen) ||
            fw_kafka_set(c, who, "acks", "all", err, errlen) ||
            fw_kafka_set(c, who, "linger.ms", "5", err, errlen) ||
            fw_kafka_set(c, who, "compression.type", "lz4", err, errlen) ||
            fw_kafka_set(c, who, "message.max.bytes", mmb, err, errlen) ||
            fw_kafka_set(c, who, "message.timeout.ms", tmo, err, errlen))
            goto fail;
    } else {
        if ((group && fw_kafka_set(c, who, "group.id", group, err, errlen)) ||
            fw_kafka_set(c, who, "enable.auto.commit", "false", err, errlen) ||
            fw_kafka_set(c, who, "enable.partition.eof", "false", err, errlen) ||
            fw_kafka_set(c, who, "fetch.message.max.bytes", "16777216", err, errlen))
            goto fail;
    }
    rd_kafka_conf_set_log_cb(c, fw_kafka_log);
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(type, c, e, sizeof e);
    if (!rk) {
        snprintf(err, errlen, "cannot create the Kafka %s: %s", who, e);
        goto fail;
    }
    return rk;
fail:
    rd_kafka_conf_destroy(c);
    return NULL;
}

/* 1 exists, 0 does not, -1 cannot tell (err). */
static int topic_exists(rd_kafka_t *rk, const char *topic, int nparts, char *err,
                        size_t errlen)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t r = rd_kafka_metadata(rk, 0, t, &md, META_TIMEOUT_MS);
    rd_kafka_topic_destroy(t);
    if (r) {
        snprintf(err, errlen, "asking the brokers about the state topic %s: %s", topic,
                 rd_kafka_err2str(r));
        return -1;
    }
    int rc = 1;
    if (md->topic_cnt < 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        rc = 0;
    else if (md->topics[0].err) {
        snprintf(err, errlen, "state topic %s: %s", topic, rd_kafka_err2str(md->topics[0].err));
        rc = -1;
    } else if (md->topics[0].partition_cnt != nparts) {
        snprintf(err, errlen, "topic %s has %d partitions; it must have exactly %d "
                              "(delete it and run `fraudwatch state init`, or name another "
                              "in the config)", topic, md->topics[0].partition_cnt, nparts);
        rc = -1;
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* state: the state topic's configs; else a plain one-partition topic. */
static int create_topic_as(rd_kafka_t *rk, const fw_settings *s, const char *topic, bool state,
                           int nparts, char *err, size_t errlen)
{
    char e[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, nparts, -1, e, sizeof e);
    if (!nt) {
        snprintf(err, errlen, "state topic %s: %s", topic, e);
        return -1;
    }
    char mmb[32];
    size_t need = s->state_chunk_bytes + 65536;
    snprintf(mmb, sizeof mmb, "%zu", need > 1048588 ? need : (size_t)1048588);
    /* Compacted: the latest value of each key is kept, tombstones free the
     * old checkpoints.  Segments roll every 10 minutes so that tombstoned
     * chunks become cleanable; tombstones themselves stay a day, longer
     * than any restore reads. */
    static const char *cfg[][2] = {
        { "cleanup.policy", "compact" },
        { "segment.ms", "600000" },
        { "min.cleanable.dirty.ratio", "0.1" },
        { "delete.retention.ms", "86400000" },
        { "min.compaction.lag.ms", "0" },
    };
    for (size_t i = 0; state && i < sizeof cfg / sizeof cfg[0]; i++)
        rd_kafka_NewTopic_set_config(nt, cfg[i][0], cfg[i][1]);
    if (state)
        rd_kafka_NewTopic_set_config(nt, "max.message.bytes", mmb);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opt, META_TIMEOUT_MS, NULL, 0);
    rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, META_TIMEOUT_MS + 5000);
    int rc = -1;
    if (!ev) {
        snprintf(err, errlen, "creating the state topic %s: no answer from the brokers", topic);
    } else if (rd_kafka_event_error(ev)) {
        snprintf(err, errlen, "creating the state topic %s: %s", topic,
                 rd_kafka_event_error_string(ev));
    } else {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t r = n ? rd_kafka_topic_result_error(res[0]) : 0;
        if (r && r != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            snprintf(err, errlen, "creating the state topic %s: %s", topic,
                     rd_kafka_topic_result_error_string(res[0]));
        else
            rc = 0;
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}


int fw_ckpt_kafka_init(const fw_settings *s, bool *created, char *err, size_t errlen)
{
    char topic[300];
    fw_ckpt_kafka_topic(s, topic, sizeof topic);
    return fw_kafka_ensure_topic(s, topic, true, created, err, errlen);
}

int fw_kafka_ensure_topic(const fw_settings *s, const char *topic, bool state, bool *created,
                          char *err, size_t errlen)
{
    return fw_kafka_ensure_topic_n(s, topic, state, 1, created, err, errlen);
}

int fw_kafka_ensure_topic_n(const fw_settings *s, const char *topic, bool state, int nparts,
                            bool *created, char *err, size_t errlen)
{
    rd_kafka_t *rk = client(s, RD_KAFKA_PRODUCER, NULL, err, errlen);
    if (!rk)
        return -1;
    int ex = topic_exists(rk, topic, nparts, err, errlen);
    int rc = ex < 0 ? -1 : 0;
    *created = false;
    if (ex == 0) {
        rc = create_topic_as(rk, s, topic, state, nparts, err, errlen);
        *created = rc == 0;
    }
    rd_kafka_destroy(rk);
    return rc;
}

/* Whether the consumer group has committed a position on any input
 * partition: 1, 0, or -1 (err). */
static int group_has_commits(const fw_settings *s, char *err, size_t errlen)
{
    rd_kafka_t *rk = client(s, RD_KAFKA_CONSUMER, s->group_id, err, errlen);
    if (!rk)
        return -1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    int rc = 0;
    for (size_t i = 0; i < s->ninput_topics && rc == 0; i++) {
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, s->input_topics[i], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t r = rd_kafka_metadata(rk, 0, t, &md, META_TIMEOUT_MS);
        rd_kafka_topic_destroy(t);
        if (r) {
            snprintf(err, errlen, "asking the brokers about input topic %s: %s",
                     s->input_topics[i], rd_kafka_err2str(r));
            rc = -1;
            break;
        }
        if (md->topic_cnt == 1 && !md->topics[0].err)
            for (int p = 0; p < md->topics[0].partition_cnt; p++)
                rd_kafka_topic_partition_list_add(l, s->input_topics[i],
                                                  md->topics[0].partitions[p].id);
        rd_kafka_metadata_destroy(md);
    }
    if (rc == 0 && l->cnt > 0) {
        rd_kafka_resp_err_t r = rd_kafka_committed(rk, l, META_TIMEOUT_MS);
        if (r) {
            snprintf(err, errlen, "reading the committed positions of group %s: %s",
                     s->group_id, rd_kafka_err2str(r));
            rc = -1;
        } else {
            for (int i = 0; i < l->cnt; i++)
                if (l->elems[i].offset >= 0)
                    rc = 1;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return rc;
}

/* Reads the whole (one-partition) state topic into sc.  0 or -1 (err). */
/* Reads the (one-partition) state topic into sc, from `from` (< 0: the
 * beginning; with tail > 0: the last `tail` records) to its end; *start
 * (if not NULL) receives where the read began.  0 or -1 (err). */
static int read_topic(const fw_settings *s, const char *topic, int32_t part, int64_t from,
                      int64_t tail, struct scan *sc, uint64_t *bytes_read, int64_t *start, bool *whole,
                      char *err, size_t errlen)
{
    /* assign() wants a group.id; this one never joins nor commits. */
    char group[1100];
    snprintf(group, sizeof group, "%s.state-reader", s->group_id);
    rd_kafka_t *rk = client(s, RD_KAFKA_CONSUMER, group, err, errlen);
    if (!rk)
        return -1;
    int rc = -1;
    int64_t lo, hi;
    *bytes_read = 0;
    rd_kafka_resp_err_t r = rd_kafka_query_watermark_offsets(rk, topic, part, &lo, &hi,
                                                             META_TIMEOUT_MS);
    if (r) {
        snprintf(err, errlen, "reading the state topic %s: %s", topic, rd_kafka_err2str(r));
        goto out;
    }
    int64_t at = lo;
    if (tail > 0 && hi - tail > lo)
        at = hi - tail;
    else if (tail <= 0 && from > lo)
        at = from;
    if (start)
        *start = at;
    if (whole)
        *whole = at == lo;
    if (hi <= at) {
        rc = 0;
        goto out;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, part)->offset = at;
    r = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (r) {
        snprintf(err, errlen, "reading the state topic %s: %s", topic, rd_kafka_err2str(r));
        goto out;
    }
    int64_t last = fw_mono_ms();
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) {
            if (fw_mono_ms() - last > READ_STALL_MS) {
                snprintf(err, errlen, "reading the state topic %s: nothing came for %d s "
                                      "(offset %lld of %lld)", topic, READ_STALL_MS / 1000,
                         (long long)lo, (long long)hi);
                goto out;
            }
            continue;
        }
        last = fw_mono_ms();
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                snprintf(err, errlen, "reading the state topic %s: %s", topic,
                         rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                goto out;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        int64_t off = m->offset;
        if (m->key)
            scan_record(sc, m->key, m->key_len, m->payload, m->len, m->offset);
        *bytes_read += m->len;
        rd_kafka_message_destroy(m);
        if (off >= hi - 1)
            break;
    }
    rc = 0;
out:
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- the store ------------------------------------------------------------ */

struct known {
    uint64_t id;
    uint32_t chunks;
};

struct fw_ckpt_kafka {
    const fw_settings *s;
    char topic[300];
    int32_t partition;       /* of the state topic: 0, or a unit's (scale.c) */
    int32_t nparts;          /* the state topic's partitions: 1, or scale.partitions */
    fw_ckpt_positions_fn has_positions;  /* the lost-state check; NULL: the input group's */
    void *hp_ctx;
    char hp_group[1100];     /* whose positions those are, for messages */
    rd_kafka_t *rk;
    rd_kafka_topic_t *t;
    int64_t stall_ms;
    /* delivery reports, served on the writer thread by flush() */
    int dr_failed;
    char dr_err[256];
    int64_t first_off;       /* offset of the pending checkpoint's chunk 0 */
    /* the checkpoint written and not yet published */
    uint64_t pend_id;
    uint32_t pend_chunks;
    uint64_t pend_bytes;
    char pend_sha[65];
    /* checkpoints in the topic with live records, to tombstone */
    struct known *known;
    size_t nknown, capknown;
    uint64_t last_id;        /* the highest id seen or written */
    uint64_t kept_id;        /* the last published (or restored) one; 0: none */
    char *restored;          /* the body fw_driver_restore reads */
    fw_ckpt_fence_fn fence;
    void *fence_ctx;
    bool prepared;           /* fw_ckpt_kafka_prepare's answer waits in pre_* */
    FILE *pre_f;
    char pre_where[400];
    fw_counter *restores, *skipped, *write_failures;
    fw_gauge *restore_seconds, *restore_bytes, *ckpt_bytes;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    fw_ckpt_kafka *k = opaque;
    if (!m->err && m->_private == (void *)k)
        k->first_off = m->offset;   /* chunk 0 */
    if (m->err) {
        if (!k->dr_failed++)
            snprintf(k->dr_err, sizeof k->dr_err, "%s", rd_kafka_err2str(m->err));
    }
}

fw_ckpt_kafka *fw_ckpt_kafka_new(const fw_settings *s, fw_metrics *m, char *err, size_t errlen)
{
    char topic[300];
    fw_ckpt_kafka_topic(s, topic, sizeof topic);
    return fw_ckpt_kafka_new_part(s, topic, 0, 1, m, err, errlen);
}

fw_ckpt_kafka *fw_ckpt_kafka_new_part(const fw_settings *s, const char *topic, int32_t partition,
                                      int32_t nparts, fw_metrics *m, char *err, size_t errlen)
{
    fw_ckpt_kafka *k = fw_xcalloc(1, sizeof *k);
    k->s = s;
    snprintf(k->topic, sizeof k->topic, "%s", topic);
    k->partition = partition;
    k->nparts = nparts;
    const char *stall = getenv("FW_TEST_CHECKPOINT_STALL_MS");
    k->stall_ms = stall ? atoll(stall) : 0;
    /* Built here rather than through client(): the delivery callback and
     * its opaque are set before the producer exists. */
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char mmb[32], tmo[32];
    snprintf(mmb, sizeof mmb, "%zu", s->state_chunk_bytes + 65536);
    snprintf(tmo, sizeof tmo, "%d", WRITE_TIMEOUT_MS);
    int bad = fw_kafka_set(c, "state producer", "bootstrap.servers", s->brokers, err, errlen);
    for (size_t i = 0; !bad && i < s->nproducer; i++)
        bad = fw_kafka_set(c, "state producer", s->producer_keys[i], s->producer_values[i], err,
                           errlen);
    if (bad || fw_kafka_set(c, "state producer", "client.id", s->instance_id, err, errlen) ||
        fw_kafka_set(c, "state producer", "enable.idempotence", "true", err, errlen) ||
        fw_kafka_set(c, "state producer", "acks", "all", err, errlen) ||
        fw_kafka_set(c, "state producer", "linger.ms", "5", err, errlen) ||
        fw_kafka_set(c, "state producer", "compression.type", "lz4", err, errlen) ||
        fw_kafka_set(c, "state producer", "message.max.bytes", mmb, err, errlen) ||
        fw_kafka_set(c, "state producer", "message.timeout.ms", tmo, err, errlen)) {
        rd_kafka_conf_destroy(c);
        free(k);
        return NULL;
    }
    rd_kafka_conf_set_opaque(c, k);
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_log_cb(c, fw_kafka_log);
    char e[512];
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    if (!k->rk) {
        snprintf(err, errlen, "cannot create the Kafka state producer: %s", e);
        rd_kafka_conf_destroy(c);
        free(k);
        return NULL;
    }
    k->t = rd_kafka_topic_new(k->rk, k->topic, NULL);
    if (m) {
        k->restores = fw_metrics_counter(m, "fraudwatch_state_restores_total",
                                         "Checkpoints restored from the state topic.", "");
        k->skipped = fw_metrics_counter(m, "fraudwatch_state_checkpoints_skipped_total",
                                        "Incomplete (torn) checkpoints in the state topic "
                                        "passed over by a restore.", "");
        k->write_failures = fw_metrics_counter(m, "fraudwatch_state_write_failures_total",
                                               "Checkpoint chunks or manifests the state topic "
                                               "did not acknowledge.", "");
        k->restore_seconds = fw_metrics_gauge(m, "fraudwatch_state_restore_seconds",
                                              "Duration of the last restore from the state "
                                              "topic (reading and checking it).", "");
        k->restore_bytes = fw_metrics_gauge(m, "fraudwatch_state_restore_bytes",
                                            "Size of the checkpoint last restored from the "
                                            "state topic.", "");
        k->ckpt_bytes = fw_metrics_gauge(m, "fraudwatch_state_checkpoint_bytes",
                                         "Size of the last checkpoint written to the state "
                                         "topic.", "");
    }
    return k;
}

void fw_ckpt_kafka_free(fw_ckpt_kafka *k)
{
    if (!k)
        return;
    if (k->t)
        rd_kafka_topic_destroy(k->t);
    if (k->rk) {
        rd_kafka_flush(k->rk, 5000);   /* tombstones on their way */
        rd_kafka_destroy(k->rk);
    }
    if (k->pre_f)
        fclose(k->pre_f);
    free(k->known);
    free(k->restored);
    free(k);
}

void fw_ckpt_kafka_set_positions_check(fw_ckpt_kafka *k, fw_ckpt_positions_fn fn, void *ctx,
                                       const char *group)
{
    k->has_positions = fn;
    k->hp_ctx = ctx;
    snprintf(k->hp_group, sizeof k->hp_group, "%s", group);
}

void fw_ckpt_kafka_set_fence(fw_ckpt_kafka *k, fw_ckpt_fence_fn fn, void *ctx)
{
    k->fence = fn;
    k->fence_ctx = ctx;
}

static void know(fw_ckpt_kafka *k, uint64_t id, uint32_t chunks)
{
    for (size_t i = 0; i < k->nknown; i++)
        if (k->known[i].id == id) {
            if (chunks > k->known[i].chunks)
                k->known[i].chunks = chunks;
            return;
        }
    if (k->nknown == k->capknown) {
        k->capknown = k->capknown ? k->capknown * 2 : 8;
        k->known = fw_xrealloc(k->known, k->capknown * sizeof *k->known);
    }
    k->known[k->nknown++] = (struct known){ id, chunks };
    if (id > k->last_id)
        k->last_id = id;
}

/* copy false: v must stay valid until settle() (a chunk of the body). */
static int produce_as(fw_ckpt_kafka *k, const char *key, const void *v, size_t len, void *op,
                      bool copy);

static int produce(fw_ckpt_kafka *k, const char *key, const void *v, size_t len)
{
    return produce_as(k, key, v, len, NULL, true);
}

static int produce_as(fw_ckpt_kafka *k, const char *key, const void *v, size_t len, void *op,
                      bool copy)
{
    /* A variable, not an expression: librdkafka's macro casts its argument. */
    int flags = v && copy ? RD_KAFKA_MSG_F_COPY : 0;
    for (;;) {
        rd_kafka_resp_err_t r = rd_kafka_producev(
            k->rk, RD_KAFKA_V_RKT(k->t), RD_KAFKA_V_PARTITION(k->partition),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)v, len),
            RD_KAFKA_V_MSGFLAGS(flags), RD_KAFKA_V_OPAQUE(op), RD_KAFKA_V_END);
        if (r == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(k->rk, 100);
            continue;
        }
        if (r) {
            if (!k->dr_failed++)
                snprintf(k->dr_err, sizeof k->dr_err, "%s", rd_kafka_err2str(r));
            return -1;
        }
        return 0;
    }
}

/* Waits for every delivery report; 0 when all were acknowledged. */
static int settle(fw_ckpt_kafka *k)
{
    rd_kafka_resp_err_t r = rd_kafka_flush(k->rk, WRITE_TIMEOUT_MS + 5000);
    if (r && !k->dr_failed++)
        snprintf(k->dr_err, sizeof k->dr_err, "%s", rd_kafka_err2str(r));
    return k->dr_failed ? -1 : 0;
}

static void tombstone(fw_ckpt_kafka *k, uint64_t id, uint32_t chunks)
{
    char key[64];
    for (uint32_t j = 0; j < chunks; j++) {
        snprintf(key, sizeof key, "c/%016" PRIx64 "/%06u", id, j);
        produce(k, key, NULL, 0);
    }
    snprintf(key, sizeof key, "m/%016" PRIx64, id);
    produce(k, key, NULL, 0);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The body is cut into chunks as the encoder writes it (a FILE of
 * fopencookie), so the writer holds one chunk, not the whole checkpoint,
 * and the first chunks are on their way while the rest is encoded. */
#define MAX_CHUNKS_IN_FLIGHT 32

struct chunker {
    fw_ckpt_kafka *k;
    char *buf;
    size_t len, cap;
    uint64_t total;
    fw_sha256 h;
    bool failed;
};

static int emit(struct chunker *w)
{
    fw_ckpt_kafka *k = w->k;
    char key[64];
    uint32_t seq = k->pend_chunks;
    snprintf(key, sizeof key, "c/%016" PRIx64 "/%06u", k->pend_id, seq);
    fw_sha256_update(&w->h, w->buf, w->len);
    w->total += w->len;
    /* Bounded memory: wait while many chunks are unacknowledged; stop at
     * the first failed one (the checkpoint has failed). */
    while (!k->dr_failed && rd_kafka_outq_len(k->rk) > MAX_CHUNKS_IN_FLIGHT)
        rd_kafka_poll(k->rk, 10);
    if (k->dr_failed)
        return -1;
    if (produce_as(k, key, w->buf, w->len, seq == 0 ? (void *)k : NULL, true) != 0)
        return -1;
    k->pend_chunks = seq + 1;      /* a failure later tombstones it too */
    w->len = 0;
    if (seq == 0 && k->stall_ms > 0) {
        /* tests: a checkpoint begun and not finished, for kill -9 */
        if (settle(k) != 0)
            return -1;
        struct timespec ts = { k->stall_ms / 1000, (k->stall_ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
    }
    return 0;
}

static ssize_t chunk_write(void *cookie, const char *p, size_t n)
{
    struct chunker *w = cookie;
    if (w->failed)
        return -1;
    for (size_t done = 0; done < n;) {
        size_t take = n - done < w->cap - w->len ? n - done : w->cap - w->len;
        memcpy(w->buf + w->len, p + done, take);
        w->len += take;
        done += take;
        if (w->len == w->cap && emit(w) != 0) {
            w->failed = true;
            errno = EIO;
            return -1;
        }
    }
    return (ssize_t)n;
}

static int k_write(void *self, fw_ckpt_fill_fn fill, void *ctx, char *err, size_t errlen)
{
    fw_ckpt_kafka *k = self;
    uint64_t id = (uint64_t)wall_ms() * 1000;
    if (id <= k->last_id)
        id = k->last_id + 1;
    /* Known before the first chunk goes out: a failure tombstones what got
     * there (discard). */
    k->pend_id = id;
    k->pend_chunks = 0;
    k->pend_bytes = 0;
    know(k, id, 0);
    k->dr_failed = 0;
    k->first_off = -1;
    struct chunker w = { .k = k, .cap = k->s->state_chunk_bytes };
    w.buf = fw_xmalloc(w.cap);
    fw_sha256_init(&w.h);
    FILE *f = fopencookie(&w, "w", (cookie_io_functions_t){ .write = chunk_write });
    int rc = -1;
    char e[512] = "";
    if (!f) {
        snprintf(e, sizeof e, "fopencookie: %s", strerror(errno));
    } else {
        setvbuf(f, NULL, _IOFBF, 1 << 16);
        rc = fill(ctx, f, e, sizeof e);
        if (fclose(f) != 0 && rc == 0) {
            snprintf(e, sizeof e, "%s", w.failed ? "a chunk was not produced" : strerror(errno));
            rc = -1;
        }
        if (rc == 0 && !w.failed && (w.len > 0 || k->pend_chunks == 0) && emit(&w) != 0)
            rc = -1;
        if (w.failed)
            rc = -1;
    }
    free(w.buf);
    /* Every chunk acknowledged (or failed) before this returns. */
    int settled = settle(k);
    if (rc == 0)
        rc = settled;
    know(k, id, k->pend_chunks);
    uint32_t n = k->pend_chunks;
    if (rc != 0) {
        if (k->write_failures)
            fw_counter_add(k->write_failures, 1);
        const char *why = k->dr_failed ? k->dr_err : e;
        snprintf(err, errlen, "writing checkpoint %016" PRIx64 " (%u chunks, %" PRIu64 " bytes "
                              "so far) to the state topic %s: %s%s", id, n, w.total, k->topic,
                 why, strstr(why, "too large")
                          ? " (a chunk is larger than the topic's max.message.bytes: lower "
                            "state.chunk_bytes, or raise the topic's limit)"
                          : "");
        return -1;
    }
    unsigned char d[32];
    fw_sha256_final(&w.h, d);
    for (int i = 0; i < 32; i++)
        snprintf(k->pend_sha + 2 * i, 3, "%02x", d[i]);
    k->pend_bytes = w.total;
    if (k->ckpt_bytes)
        fw_gauge_set(k->ckpt_bytes, (double)w.total);
    return 0;
}

static int k_publish(void *self, char *err, size_t errlen)
{
    fw_ckpt_kafka *k = self;
    char why[512];
    if (k->fence && !k->fence(k->fence_ctx, why, sizeof why)) {
        snprintf(err, errlen, "checkpoint %016" PRIx64 " not published: %s", k->pend_id, why);
        return -1;
    }
    cJSON *j = cJSON_CreateObject();
    char idhex[20];
    snprintf(idhex, sizeof idhex, "%016" PRIx64, k->pend_id);
    cJSON_AddNumberToObject(j, "format", 1);
    cJSON_AddStringToObject(j, "id", idhex);
    cJSON_AddNumberToObject(j, "chunks", k->pend_chunks);
    cJSON_AddNumberToObject(j, "bytes", (double)k->pend_bytes);
    cJSON_AddStringToObject(j, "sha256", k->pend_sha);
    cJSON_AddStringToObject(j, "instance", k->s->instance_id);
    cJSON_AddNumberToObject(j, "created_ms", (double)wall_ms());
    cJSON_AddNumberToObject(j, "first_offset", (double)k->first_off);
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    char key[64];
    snprintf(key, sizeof key, "m/%s", idhex);
    k->dr_failed = 0;
    int rc = produce(k, key, txt, strlen(txt));
    free(txt);
    if (rc == 0)
        rc = settle(k);
    if (rc != 0) {
        if (k->write_failures)
            fw_counter_add(k->write_failures, 1);
        snprintf(err, errlen, "publishing checkpoint %s to the state topic %s: %s", idhex,
                 k->topic, k->dr_err);
        return -1;
    }
    /* In place.  Everything older than the previous one goes (the previous
     * one stays: the fallback should this one turn out unreadable). */
    uint64_t prev = k->kept_id;
    k->kept_id = k->pend_id;
    k->pend_id = 0;
    size_t w = 0;
    k->dr_failed = 0;
    for (size_t i = 0; i < k->nknown; i++) {
        if (k->known[i].id == k->kept_id || k->known[i].id == prev)
            k->known[w++] = k->known[i];
        else
            tombstone(k, k->known[i].id, k->known[i].chunks);
    }
    size_t dropped = k->nknown - w;
    k->nknown = w;
    if (dropped && settle(k) != 0)
        fw_log(FW_LOG_WARN, "checkpoint", "old checkpoints not all tombstoned (compaction "
                                          "frees them later)", "topic=%s error=\"%s\"",
               k->topic, k->dr_err);
    return 0;
}

static void k_discard(void *self)
{
    fw_ckpt_kafka *k = self;
    if (!k->pend_id)
        return;
    k->dr_failed = 0;
    tombstone(k, k->pend_id, k->pend_chunks);
    if (settle(k) == 0) {
        size_t w = 0;
        for (size_t i = 0; i < k->nknown; i++)
            if (k->known[i].id != k->pend_id)
                k->known[w++] = k->known[i];
        k->nknown = w;
    }
    k->pend_id = 0;
}

static const char lost_help[] =
    "the state that goes with those positions is gone (a state topic deleted or emptied "
    "by mistake, or a first start after state.store changed).  Starting would resume from "
    "the committed positions with empty windows: sequences and thresholds in progress are "
    "missed.  To do that knowingly, start once with --set state.on_lost=empty (after "
    "`fraudwatch state init` if the topic is missing); see docs/scaling.md, \"Lost state\"";

/* The state is not there, the group says there was some: refuse or go on. */
static int lost(fw_ckpt_kafka *k, const char *what, char *err, size_t errlen)
{
    int c = k->has_positions ? k->has_positions(k->hp_ctx, err, errlen)
                             : group_has_commits(k->s, err, errlen);
    if (c < 0)
        return -1;
    if (c == 0) {
        fw_log(FW_LOG_INFO, "checkpoint", "no checkpoint yet in the state topic: starting "
                                          "with empty state", "topic=%s", k->topic);
        return 0;
    }
    if (strcmp(k->s->state_on_lost, "empty") != 0) {
        snprintf(err, errlen, "%s, but consumer group %s has committed positions: %s", what,
                 k->has_positions ? k->hp_group : k->s->group_id, lost_help);
        return -1;
    }
    fw_log(FW_LOG_ERROR, "checkpoint", "STATE LOST: starting from the committed positions "
                                       "with EMPTY windows (state.on_lost = empty); alerts "
                                       "that needed earlier events are missed",
           "topic=%s group=%s cause=\"%s\"", k->topic,
           k->has_positions ? k->hp_group : k->s->group_id, what);
    return 0;
}

static int find_latest(fw_ckpt_kafka *k, FILE **fp, char *where, size_t wherelen, char *err,
                       size_t errlen);

/* The restore's answer, worked out early (fw_ckpt_kafka_prepare). */
static int k_open_latest(void *self, FILE **fp, char *where, size_t wherelen, char *err,
                         size_t errlen)
{
    fw_ckpt_kafka *k = self;
    if (!k->prepared)
        return find_latest(k, fp, where, wherelen, err, errlen);
    k->prepared = false;
    *fp = k->pre_f;
    k->pre_f = NULL;
    snprintf(where, wherelen, "%s", k->pre_where);
    return 0;
}

int fw_ckpt_kafka_prepare(fw_ckpt_kafka *k, char *err, size_t errlen)
{
    if (find_latest(k, &k->pre_f, k->pre_where, sizeof k->pre_where, err, errlen) != 0)
        return -1;
    k->prepared = true;
    return 0;
}

/* The newest complete checkpoint of a read that began at `start` (whole:
 * at the topic's beginning), skipping torn ones with a warning; NULL when
 * none, with *need the offset to read again from when the newest
 * manifest's chunks begin before `start`. */
static const struct ckrec *pick(fw_ckpt_kafka *k, struct scan *sc, bool whole, int64_t start,
                                int64_t *need)
{
    if (sc->n)
        qsort(sc->v, sc->n, sizeof *sc->v, cmp_newest);
    const struct ckrec *best = NULL;
    for (size_t i = 0; i < sc->n; i++) {
        struct ckrec *r = &sc->v[i];
        uint32_t present = chunks_present(r);
        know(k, r->id, r->manifest && r->nchunks > r->cap ? r->nchunks : r->cap);
        if (best || (!r->manifest && !present))
            continue;
        char why[200];
        if (!*incomplete(r, why, sizeof why)) {
            best = r;
            continue;
        }
        if (!whole && r->manifest && r->first_offset >= 0 && r->first_offset < start) {
            *need = r->first_offset;   /* not torn: begun before this read */
            return NULL;
        }
        if (!whole && r->manifest && r->first_offset < 0) {
            *need = -1;                /* no offset given: read everything */
            return NULL;
        }
        if (k->skipped)
            fw_counter_add(k->skipped, 1);
        fw_log(FW_LOG_WARN, "checkpoint", "incomplete checkpoint in the state topic skipped: "
                                          "restoring an older one",
               "topic=%s id=%016" PRIx64 " instance=\"%s\" reason=\"%s\"", k->topic, r->id,
               r->instance, why);
    }
    return best;
}

static int find_latest(fw_ckpt_kafka *k, FILE **fp, char *where, size_t wherelen, char *err,
                       size_t errlen)
{
    *fp = NULL;
    int64_t t0 = fw_mono_ns();
    int ex = topic_exists(k->rk, k->topic, k->nparts, err, errlen);
    if (ex < 0)
        return -1;
    if (ex == 0) {
        char what[400];
        snprintf(what, sizeof what, "the state topic %s does not exist", k->topic);
        if (lost(k, what, err, errlen) != 0)
            return -1;
        if (create_topic_as(k->rk, k->s, k->topic, true, k->nparts, err, errlen) != 0)
            return -1;
        fw_log(FW_LOG_INFO, "checkpoint", "state topic created", "topic=%s", k->topic);
        return 0;
    }
    /* The newest manifest is near the end (a checkpoint's chunks, then
     * its manifest, then tombstones of older ones): read the last
     * TAIL_RECORDS first; only if the newest manifest's chunks begin
     * before that, read again from its first chunk; only if that fails
     * too, read the whole topic.  So a restore reads about one checkpoint,
     * not every tombstoned one compaction has not freed yet. */
    struct scan sc = { 0 };
    uint64_t read_bytes = 0;
    const struct ckrec *best = NULL;
    int64_t from = -1, tail = TAIL_RECORDS;
    const char *t = getenv("FW_TEST_STATE_TAIL_RECORDS");   /* tests: a short tail */
    if (t && atoll(t) > 0)
        tail = atoll(t);
    for (int pass = 0; pass < 3 && !best; pass++) {
        scan_free(&sc);
        uint64_t n = 0;
        int64_t start = 0;
        bool whole = false;
        if (read_topic(k->s, k->topic, k->partition, from, tail, &sc, &n, &start, &whole, err, errlen) != 0) {
            scan_free(&sc);
            return -1;
        }
        read_bytes += n;
        int64_t need = -1;
        best = pick(k, &sc, whole, start, &need);
        fw_log(FW_LOG_DEBUG, "checkpoint", "state topic read", "pass=%d from=%lld whole=%d "
               "bytes=%" PRIu64 " found=%d", pass + 1, (long long)start, (int)whole, n,
               best != NULL);
        if (whole)
            break;
        tail = 0;
        from = pass == 0 && need >= 0 ? need : -1;   /* then the whole topic */
    }
    int rc = 0;
    if (!best) {
        char what[400];
        snprintf(what, sizeof what, "the state topic %s holds no complete checkpoint",
                 k->topic);
        rc = lost(k, what, err, errlen);
        scan_free(&sc);
        return rc;
    }
    free(k->restored);
    k->restored = fw_xmalloc(best->bytes ? best->bytes : 1);
    size_t off = 0;
    for (uint32_t j = 0; j < best->nchunks; j++) {
        memcpy(k->restored + off, best->chunk[j], best->clen[j]);
        off += best->clen[j];
    }
    k->kept_id = best->id;
    *fp = fmemopen(k->restored, best->bytes ? best->bytes : 1, "rb");
    if (!*fp) {
        snprintf(err, errlen, "fmemopen: %s", strerror(errno));
        rc = -1;
    } else {
        double secs = (double)(fw_mono_ns() - t0) / 1e9;
        snprintf(where, wherelen, "state topic %s[%d] checkpoint %016" PRIx64, k->topic,
                 (int)k->partition, best->id);
        fw_log(FW_LOG_INFO, "checkpoint", "restoring from the state topic",
               "topic=%s partition=%d id=%016" PRIx64 " instance=\"%s\" bytes=%" PRIu64 " chunks=%u "
               "topic_bytes_read=%" PRIu64 " read_ms=%.1f age_ms=%lld",
               k->topic, (int)k->partition, best->id, best->instance, best->bytes, best->nchunks, read_bytes,
               secs * 1e3, (long long)(best->created_ms ? wall_ms() - best->created_ms : -1));
        if (k->restores) {
            fw_counter_add(k->restores, 1);
            fw_gauge_set(k->restore_seconds, secs);
            fw_gauge_set(k->restore_bytes, (double)best->bytes);
        }
    }
    scan_free(&sc);
    return rc;
}

const fw_ckpt_store_ops fw_ckpt_kafka_ops = {
    .name = "kafka",
    .write = k_write,
    .publish = k_publish,
    .discard = k_discard,
    .open_latest = k_open_latest,
};

int fw_ckpt_kafka_scan(const fw_settings *s, fw_ckpt_info *out, size_t max, size_t *n,
                       char *err, size_t errlen)
{
    char topic[300];
    fw_ckpt_kafka_topic(s, topic, sizeof topic);
    return fw_ckpt_kafka_scan_part(s, topic, 0, 1, out, max, n, err, errlen);
}

int fw_ckpt_kafka_scan_part(const fw_settings *s, const char *topic, int32_t partition,
                            int32_t nparts, fw_ckpt_info *out, size_t max, size_t *n,
                            char *err, size_t errlen)
{
    *n = 0;
    rd_kafka_t *rk = client(s, RD_KAFKA_PRODUCER, NULL, err, errlen);
    if (!rk)
        return -1;
    int ex = topic_exists(rk, topic, nparts, err, errlen);
    rd_kafka_destroy(rk);
    if (ex <= 0) {
        if (ex == 0)
            snprintf(err, errlen, "the state topic %s does not exist (`fraudwatch state init` "
                                  "creates it)", topic);
        return -1;
    }
    struct scan sc = { 0 };
    uint64_t read_bytes;
    if (read_topic(s, topic, partition, -1, 0, &sc, &read_bytes, NULL, NULL, err, errlen) != 0) {
        scan_free(&sc);
        return -1;
    }
    if (sc.n)
        qsort(sc.v, sc.n, sizeof *sc.v, cmp_newest);
    for (size_t i = 0; i < sc.n && *n < max; i++) {
        const struct ckrec *r = &sc.v[i];
        uint32_t present = chunks_present(r);
        if (!r->manifest && !present)
            continue;           /* tombstoned */
        fw_ckpt_info *o = &out[(*n)++];
        memset(o, 0, sizeof *o);
        o->id = r->id;
        snprintf(o->instance, sizeof o->instance, "%s", r->instance);
        o->created_ms = r->created_ms;
        o->bytes = r->bytes;
        o->chunks = r->manifest ? r->nchunks : present;
        o->chunks_present = present;
        o->manifest = r->manifest;
        char why[200];
        o->complete = !*incomplete(r, why, sizeof why);
    }
    scan_free(&sc);
    return 0;
}

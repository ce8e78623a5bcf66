/* fuzz_engine.c — a fuzzed rule set and fuzzed events through the pipeline.
 *
 * Input: parts separated by a line "%%" (see fuzz.h).  The first part is the
 * rules file, the last part the events (JSONL, at most MAX_EVENTS lines),
 * and each part in between a watchlist or rules file whose first line is its
 * name (as in fuzz_rules).  When the rule set is refused, the events run
 * under a fixed rule set that uses every kind of rule and condition, so the
 * event half of an input is always exercised.
 *
 * The events run twice: (A) one worker, one batch; (B) two workers, batches
 * of three, a checkpoint after the first k events (k from the input) loaded
 * into a pipeline of three workers for the rest.  The SPEC says neither the
 * thread count nor a restart from a checkpoint changes the alerts, so A and B
 * must give the same alerts (detected_ts aside), the same malformed events
 * and the same regex-limit faults.  Every alert must be one line of valid,
 * UTF-8 JSON naming its rule, the event it fired on (event_id, event_ts) and
 * its subject, with a 32-hex-digit alert_id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/event.h"
#include "fraudwatch/driver.h"
#include "fraudwatch/pipeline.h"
#include "source_memory.h"
#include "fraudwatch/ruleset.h"
#include "fuzz.h"

#define MAX_PARTS 6
#define MAX_EVENTS 64
#define MAX_EVENT_BYTES 4096
#define FZ_MAX_INPUT (128u << 10)

static const char DEFAULT_RULES[] =
    "[{\"id\":\"P1\",\"event\":\"sms\",\"subject\":\"to\",\"where\":["
    "{\"field\":\"text\",\"regex\":\"安全账户|验证码\",\"flags\":\"i\"},"
    "{\"field\":\"from\",\"not_in_list\":\"white\"}]},"
    "{\"id\":\"P2\",\"event\":\"*\",\"suppress_s\":5,\"subject\":\"a.b\",\"where\":["
    "{\"any\":[{\"field\":\"n\",\"op\":\">=\",\"value\":10},"
    "{\"field\":\"s\",\"op\":\"==\",\"value\":\"x\"},"
    "{\"any\":[{\"field\":\"a.c\",\"not_regex\":\"^\\\\d+$\"}]}]}]},"
    "{\"id\":\"C1\",\"event\":\"call\",\"threshold\":{\"group_by\":\"from\","
    "\"window_s\":60,\"count\":{\">=\":3}}},"
    "{\"id\":\"S1\",\"event\":\"transfer\",\"threshold\":{\"group_by\":[\"from\",\"to\"],"
    "\"window_s\":600,\"sum\":{\"field\":\"n\",\">\":100.5}},\"suppress_s\":0},"
    "{\"id\":\"D1\",\"event\":\"*\",\"threshold\":{\"group_by\":\"from\","
    "\"window_s\":30,\"distinct\":{\"field\":\"to\",\">=\":2}},\"suppress_s\":1},"
    "{\"id\":\"Q1\",\"sequence\":[{\"event\":\"call\",\"key\":\"to\","
    "\"where\":[{\"field\":\"from\",\"in_list\":\"fraud\"}]},"
    "{\"event\":\"sms\",\"key\":\"to\"},"
    "{\"event\":\"transfer\",\"key\":\"from\",\"where\":[{\"field\":\"n\",\"op\":\">\",\"value\":0}]}],"
    "\"within_s\":120}]";
static const char FRAUD_LIST[] = "# fraud\n170\n171\n";
static const char WHITE_LIST[] = "95555\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fw_event_init();
    return 0;
}

struct alert {
    char *json;              /* without detected_ts */
    uint64_t tag;            /* event line */
    uint32_t rule;
};

struct outcome {
    struct alert *a;
    size_t nalerts, cap;
    uint64_t bad[MAX_EVENTS];  /* line of each malformed event */
    const char *why[MAX_EVENTS];
    size_t nbad;
    uint64_t faults;
};

struct line {
    const char *p;
    size_t n;
};

static const char *str_member(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Checks one alert against the event it names and strips detected_ts. */
static char *check_alert(const fw_ruleset *rs, const fw_alert_view *a,
                         const struct line *ev)
{
    FZ_CHECK(a->len >= 2 && a->json[a->len - 1] == '\n');
    FZ_CHECKF(fw_utf8_valid(a->json, a->len), "alert is not UTF-8: %.*s",
              (int)a->len, a->json);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(a->json, a->len - 1, &end, 0);
    FZ_CHECKF(j && end == a->json + a->len - 1, "alert is not one JSON value: %.*s",
              (int)a->len, a->json);
    FZ_CHECK(cJSON_IsObject(j));

    const char *id = str_member(j, "alert_id");
    FZ_CHECK(id && strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32);
    const char *rid = str_member(j, "rule_id");
    FZ_CHECK(rid && a->rule < fw_ruleset_rule_count(rs) &&
             strcmp(rid, fw_ruleset_rule_id(rs, a->rule)) == 0);
    const char *sev = str_member(j, "severity");
    FZ_CHECK(sev && strcmp(sev, fw_ruleset_rule_severity(rs, a->rule)) == 0);
    FZ_CHECK(str_member(j, "rule_name"));
    const char *subject = str_member(j, "subject");
    FZ_CHECK(subject && strlen(subject) == a->subject_len &&
             memcmp(subject, a->subject, a->subject_len) == 0);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "ruleset_version");
    FZ_CHECK(cJSON_IsNumber(v) && v->valuedouble == (double)fw_ruleset_version(rs));
    FZ_CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "evidence")));

    /* The event it fired on: that line, parsed on its own. */
    cJSON *e = cJSON_ParseWithLength(ev->p, ev->n);
    FZ_CHECK(e);
    const char *eid = str_member(e, "event_id");
    FZ_CHECKF(eid && str_member(j, "event_id") && !strcmp(eid, str_member(j, "event_id")),
              "alert event_id differs from the event's");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "ts");
    const cJSON *ets = cJSON_GetObjectItemCaseSensitive(j, "event_ts");
    FZ_CHECK(cJSON_IsNumber(ts) && cJSON_IsNumber(ets) && ts->valuedouble == ets->valuedouble);
    cJSON_Delete(e);

    cJSON_DeleteItemFromObjectCaseSensitive(j, "detected_ts");
    char *out = cJSON_PrintUnformatted(j);
    FZ_CHECK(out);
    cJSON_Delete(j);
    return out;
}

/* The driver's sink for this target: every alert checked against the line
 * it fired on (the message offset is the line's index), malformed lines
 * recorded with their reason. */
struct fz_sink {
    const fw_ruleset *rs;
    const struct line *lines;
    struct outcome *o;
};

static void sink_alert(void *self, const fw_alert_view *a, const fw_origin *from)
{
    struct fz_sink *k = self;
    struct outcome *o = k->o;
    FZ_CHECK(from->offset >= 0 && from->offset < MAX_EVENTS);
    uint64_t tag = (uint64_t)from->offset;
    if (o->nalerts == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        o->a = realloc(o->a, o->cap * sizeof *o->a);
        FZ_CHECK(o->a);
    }
    o->a[o->nalerts++] = (struct alert){ check_alert(k->rs, a, &k->lines[tag]), tag, a->rule };
}

static void sink_dead_letter(void *self, const char *payload, size_t len, const char *why,
                             const fw_origin *from)
{
    (void)payload;
    (void)len;
    struct outcome *o = ((struct fz_sink *)self)->o;
    FZ_CHECK(why && why[0] && from->offset >= 0 && from->offset < MAX_EVENTS);
    FZ_CHECK(o->nbad < MAX_EVENTS);
    o->bad[o->nbad] = (uint64_t)from->offset;
    o->why[o->nbad++] = why;
}

static const fw_sink_ops fz_sink_ops = {
    .name = "fuzz",
    .alert = sink_alert,
    .dead_letter = sink_dead_letter,
};

/* Lines [from, to) through the one driver loop (src/driver.c) of `workers`
 * workers and batches of `batch`: the state first loaded from `load` (if
 * not NULL), and saved into *save (if not NULL) at the end. */
static void feed(uint32_t workers, uint32_t batch, fw_ruleset *rs, const struct line *lines,
                 size_t from, size_t to, struct outcome *o, FILE *load, FILE *save)
{
    char err[256];
    fw_mem_source *src = fw_mem_source_new();
    for (size_t i = from; i < to; i++)
        fw_mem_source_add(src, lines[i].p, lines[i].n, (int64_t)i);
    struct fz_sink k = { rs, lines, o };
    fw_driver_opts d = {
        .pipeline = { .workers = workers, .batch_events = batch,
                      .max_event_bytes = MAX_EVENT_BYTES },
        .source = &fw_mem_source_ops, .source_self = src,
        .sink = &fz_sink_ops, .sink_self = &k, .rules = rs,
    };
    fw_driver *drv = fw_driver_new(&d, err, sizeof err);
    FZ_CHECKF(drv, "%s", err);
    if (load)
        FZ_CHECKF(fw_pipeline_load(fw_driver_pipeline(drv), load, err, sizeof err) == 0, "%s",
                  err);
    FZ_CHECK(fw_driver_run(drv, NULL) == 0);
    o->faults += fw_driver_stats_get(drv)->faults;
    FZ_CHECK(fw_pipeline_in_flight(fw_driver_pipeline(drv)) == 0);
    if (save)
        FZ_CHECKF(fw_pipeline_save(fw_driver_pipeline(drv), save, err, sizeof err) == 0, "%s",
                  err);
    fw_driver_free(drv);
    fw_mem_source_free(src);
}

static void outcome_free(struct outcome *o)
{
    for (size_t i = 0; i < o->nalerts; i++)
        cJSON_free(o->a[i].json);
    free(o->a);
    memset(o, 0, sizeof *o);
}

static void same(const struct outcome *x, const struct outcome *y)
{
    FZ_CHECKF(x->nalerts == y->nalerts, "%zu alerts vs %zu", x->nalerts, y->nalerts);
    for (size_t i = 0; i < x->nalerts; i++)
        FZ_CHECKF(!strcmp(x->a[i].json, y->a[i].json) && x->a[i].tag == y->a[i].tag,
                  "alert %zu differs:\n%s\n%s", i, x->a[i].json, y->a[i].json);
    FZ_CHECK(x->nbad == y->nbad);
    for (size_t i = 0; i < x->nbad; i++)
        FZ_CHECK(x->bad[i] == y->bad[i] && !strcmp(x->why[i], y->why[i]));
    FZ_CHECKF(x->faults == y->faults, "%llu faults vs %llu",
              (unsigned long long)x->faults, (unsigned long long)y->faults);
}

static fw_ruleset *load(const fz_part *parts, size_t nparts)
{
    fw_rulefile files[MAX_PARTS];
    char names[MAX_PARTS][104];
    size_t n = 0;
    for (size_t i = 0; i < nparts; i++) {
        const char *body = parts[i].p;
        size_t blen = parts[i].n;
        if (i == 0) {
            snprintf(names[n], sizeof names[n], "rules.json");
        } else {
            const char *nl = memchr(body, '\n', blen);
            size_t namelen = nl ? (size_t)(nl - body) : blen;
            if (namelen > 100)
                namelen = 100;
            if (namelen == 0 || memchr(body, '\0', namelen))
                snprintf(names[n], sizeof names[n], "l%zu.list", i);
            else
                snprintf(names[n], sizeof names[n], "%.*s", (int)namelen, body);
            size_t skip = nl ? (size_t)(nl - body) + 1 : blen;
            body += skip;
            blen -= skip;
        }
        files[n] = (fw_rulefile){ names[n], body, blen };
        n++;
    }
    char err[4096];
    fw_ruleset *rs = NULL;
    if (fw_ruleset_load_files(files, n, 7, &rs, err, sizeof err) == 0)
        return rs;
    fw_rulefile dflt[3] = {
        { "default.json", DEFAULT_RULES, sizeof DEFAULT_RULES - 1 },
        { "fraud.list", FRAUD_LIST, sizeof FRAUD_LIST - 1 },
        { "white.list", WHITE_LIST, sizeof WHITE_LIST - 1 },
    };
    int rc = fw_ruleset_load_files(dflt, 3, 7, &rs, err, sizeof err);
    FZ_CHECKF(rc == 0, "default rules refused: %s", err);
    return rs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FZ_MAX_INPUT)
        return 0;
    fz_part parts[MAX_PARTS];
    size_t nparts = fz_split((const char *)data, size, parts, MAX_PARTS);
    fz_part events = { "", 0 };
    if (nparts >= 2)
        events = parts[--nparts];

    /* Event lines (blank ones skipped, as replay does), as exact-size
     * copies so that ASan sees a read past a message's end. */
    struct line lines[MAX_EVENTS];
    size_t nlines = 0;
    const char *p = events.p, *end = events.p + events.n;
    while (p < end && nlines < MAX_EVENTS) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0)
            lines[nlines++] = (struct line){ fz_dup(p, n), n };
        p += n + (nl ? 1 : 0);
    }

    fw_ruleset *rs = load(parts, nparts);

    static struct outcome a, b;

    feed(1, MAX_EVENTS, rs, lines, 0, nlines, &a, NULL, NULL);

    /* Two workers up to the checkpoint, three after it. */
    size_t split = nlines ? (size_t)data[0] % (nlines + 1) : 0;
    char *cp = NULL;
    size_t cplen = 0;
    FILE *w = open_memstream(&cp, &cplen);
    FZ_CHECK(w);
    feed(2, 3, rs, lines, 0, split, &b, NULL, w);
    fclose(w);
    FILE *r = fmemopen(cp, cplen, "rb");
    FZ_CHECK(r);
    feed(3, 3, rs, lines, split, nlines, &b, r, NULL);
    fclose(r);
    free(cp);

    same(&a, &b);
    outcome_free(&a);
    outcome_free(&b);
    fw_ruleset_unref(rs);
    for (size_t i = 0; i < nlines; i++)
        free((char *)lines[i].p);
    return 0;
}

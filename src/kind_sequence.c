/* kind_sequence.c — sequence rules: one thing, then another, for the same
 * person, within a time (SPEC §2, "Sequence").
 *
 * Owns the kind's row in the rule-kind table (rule_kinds.h): parsing
 * "sequence" and "within_s", taking the step's key from an event, and
 * applying a matched step to the key's chains (sequence.c holds the chain
 * state itself, its expiry and its checkpoint encoding).  The evidence is
 * the chain: each step's event id, time and fields. */
#include <stdlib.h>
#include <string.h>

#include "rule_kinds.h"

#define MAX_STEPS 16

static bool parse_sequence(fw_loader *L, const cJSON *seq, fw_rule *r)
{
    static const char *const allowed[] = { "event", "where", "key", NULL };
    if (!cJSON_IsArray(seq)) {
        fw_lx_report(L, "sequence", "must be an array of steps");
        return false;
    }
    int n = cJSON_GetArraySize(seq);
    if (n < 2 || n > MAX_STEPS) {
        fw_lx_report(L, "sequence", "needs 2..%d steps, has %d", MAX_STEPS, n);
        return false;
    }
    r->steps = fw_lx_calloc((size_t)n, sizeof *r->steps);
    r->nsteps = (uint32_t)n;
    bool ok = true;
    int i = 0;
    for (const cJSON *s = seq->child; s; s = s->next, i++) {
        char place[64], sub[96];
        snprintf(place, sizeof place, "sequence[%d]", i);
        fw_step *st = &r->steps[i];
        if (!cJSON_IsObject(s)) {
            fw_lx_report(L, place, "a step must be an object");
            ok = false;
            continue;
        }
        if (!fw_lx_members(L, s, place, allowed)) {
            ok = false;
            continue;
        }
        const cJSON *ev = fw_lx_member(s, "event");
        snprintf(sub, sizeof sub, "%s.event", place);
        if (!cJSON_IsString(ev) || !ev->valuestring[0]) {
            fw_lx_report(L, sub, "must be an event type or \"*\"");
            ok = false;
        } else {
            st->event = fw_lx_strdup(ev->valuestring);
        }
        const cJSON *w = fw_lx_member(s, "where");
        snprintf(sub, sizeof sub, "%s.where", place);
        if (w && !fw_lx_conds(L, w, sub, 0, &st->where, &st->nwhere))
            ok = false;
        const cJSON *k = fw_lx_member(s, "key");
        snprintf(sub, sizeof sub, "%s.key", place);
        if (!k) {
            fw_lx_report(L, sub, "missing (the field naming the person the steps "
                           "share)");
            ok = false;
        } else if (!fw_lx_path(L, k, sub, &st->key)) {
            ok = false;
        }
    }
    return ok;
}


static void sequence_parse(fw_loader *L, const cJSON *obj, fw_rule *r)
{
    const char *forbidden[] = { "event", "where", "threshold" };
    for (int i = 0; i < 3; i++)
        if (fw_lx_member(obj, forbidden[i]))
            fw_lx_report(L, forbidden[i], "a sequence rule has no \"%s\" (each "
                                          "step has its own event and where)",
                         forbidden[i]);
    parse_sequence(L, fw_lx_member(obj, "sequence"), r);
    int64_t w = 0;
    if (!fw_lx_member(obj, "within_s"))
        fw_lx_report(L, "within_s", "missing (seconds, 1..%d)", FW_WINDOW_MAX_S);
    else if (fw_lx_int(L, obj, "within_s", "within_s", 1, FW_WINDOW_MAX_S, &w))
        r->within_ms = w * 1000;
    r->suppress_ms = r->within_ms;
}

static bool sequence_scan(fw_scan_ctx *cx, const fw_rule *r, uint32_t step, fw_update *u)
{
    (void)u;
    return fw_scan_key_part(cx->key, cx->ev->root, &r->steps[step].key);
}

static void sequence_apply(fw_state *st, const fw_ruleset *rs, const fw_rule *r,
                           const fw_update *u, fw_alert_out *out)
{
    fw_keystate *k = fw_state_key(st, r, u);
    fw_buf *ev = fw_state_scratch(st);
    fw_update tmp;
    if (!fw_sequence_apply((fw_seqstate **)&k->data, r, &k->m, u, ev, st, &tmp))
        return;
    u = &tmp;   /* with its fields (the chain's last step) */
    if (fw_keystate_suppressed(k, r->suppress_ms, u->ts))
        return;
    k->last_fire = u->ts;
    /* Wrap the chain: {"within_s": W, "steps": [...]} */
    fw_buf chain = { 0 };
    fw_buf_printf(&chain, "{\"within_s\":%lld,\"steps\":",
                  (long long)(r->within_ms / 1000));
    fw_buf_put(&chain, ev->p, ev->len);
    fw_buf_putc(&chain, '}');
    fw_state_emit(out, r, rs->version, u, chain.p, chain.len);
    fw_buf_free(&chain);
}

static int64_t sequence_lifetime(const fw_rule *r) { return r->within_ms; }

static void sequence_describe(const fw_rule *r, FILE *out)
{
    fprintf(out, "sequence  within=%llds steps=", (long long)(r->within_ms / 1000));
    for (uint32_t s = 0; s < r->nsteps; s++)
        fprintf(out, "%s%s(key=%s)", s ? " -> " : "", r->steps[s].event,
                r->steps[s].key.text);
}

static void chains_save(const void *data, fw_buf *out) { fw_seqstate_save(data, out); }
/* 2: chains (event ids and times); 4: chains with each step's fields. */
#define SEQ_FLAG_IDS 2
#define SEQ_FLAG_FIELDS 4
static int chains_load(void **data, FILE *f, uint64_t flag)
{
    return fw_seqstate_load((fw_seqstate **)data, f, flag == SEQ_FLAG_FIELDS);
}
static void chains_free(void *data) { fw_seqstate_free(data); }

const fw_rule_kind_ops fw_kind_sequence = {
    .name = "sequence",
    .code = FW_RULE_SEQUENCE,
    .selector = "sequence",
    .parse = sequence_parse,
    .scan = sequence_scan,
    .apply = sequence_apply,
    .lifetime = sequence_lifetime,
    .describe = sequence_describe,
    .ckpt_flag = SEQ_FLAG_FIELDS,
    .ckpt_flag_old = SEQ_FLAG_IDS,
    .data_save = chains_save,
    .data_load = chains_load,
    .data_free = chains_free,
};

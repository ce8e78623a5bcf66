/* kind_plain.c — plain rules: conditions on one event, an alert per match
 * (SPEC §2).
 *
 * Owns the kind's row in the rule-kind table (rule_kinds.h).  A plain rule
 * keeps no per-key state of its own; with suppress_s it keeps the common
 * part (last alert time) under its subject.  Its evidence — which
 * conditions held, with the values seen — is taken at scan time, while the
 * event's tree is alive. */
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "rule_kinds.h"

static void plain_parse(fw_loader *L, const cJSON *obj, fw_rule *r)
{
    fw_lx_one_step(L, obj, r);
    r->suppress_ms = 0;
}

static bool plain_scan(fw_scan_ctx *cx, const fw_rule *r, uint32_t step, fw_update *u)
{
    (void)step;
    const fw_event *ev = cx->ev;
    if (!r->subject.nparts || !fw_scan_key_part(cx->key, ev->root, &r->subject))
        fw_buf_put(cx->key, ev->event_id, ev->event_id_len);
    cx->scratch->len = 0;
    fw_match_explain(cx->matcher, ev->root, r->steps[0].where, r->steps[0].nwhere,
                     cx->scratch);
    u->evidence = fw_arena_strndup(cx->arena, cx->scratch->p, cx->scratch->len);
    if (!u->evidence)
        fw_oom();
    return true;
}

static void plain_apply(fw_state *st, const fw_ruleset *rs, const fw_rule *r,
                        const fw_update *u, fw_alert_out *out)
{
    if (r->suppress_ms > 0) {
        fw_keystate *k = fw_state_key(st, r, u);
        if (u->ts > k->m)
            k->m = u->ts;
        if (fw_keystate_suppressed(k, r->suppress_ms, u->ts))
            return;
        k->last_fire = u->ts;
    }
    fw_buf *ev = fw_state_scratch(st);
    ev->len = 0;
    fw_buf_puts(ev, "{\"matched\":");
    fw_buf_puts(ev, u->evidence ? u->evidence : "[]");
    fw_buf_putc(ev, '}');
    fw_update tmp;
    fw_state_emit(out, r, rs->version, fw_state_fields(st, r, u, &tmp), ev->p, ev->len);
}

static int64_t plain_lifetime(const fw_rule *r)
{
    (void)r;
    return 0;
}

static void plain_describe(const fw_rule *r, FILE *out)
{
    fprintf(out, "plain     event=%s conditions=%u subject=%s", r->steps[0].event,
            r->steps[0].nwhere, r->subject.nparts ? r->subject.text : "event_id");
}

const fw_rule_kind_ops fw_kind_plain = {
    .name = "plain",
    .code = FW_RULE_PLAIN,
    .selector = NULL,
    .subject_is_key = true,
    .parse = plain_parse,
    .scan = plain_scan,
    .apply = plain_apply,
    .lifetime = plain_lifetime,
    .describe = plain_describe,
};

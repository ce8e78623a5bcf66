/* sequence.c — chain state of one (sequence rule, key) (SPEC §2).
 *
 * Owns, per step i, c_i — the latest ts of the first event of a chain that
 * has been completed through step i — and the chain itself (event ids,
 * times and each step's fields, the values the officer reads: the event is
 * long gone when the last step fires), which becomes the alert's
 * evidence.  Expiry is lazy and exact: a
 * c_i with c_i ≤ m − W reads as absent wherever it is read, and its chain is
 * freed the next time the key is touched.  The engine hands over an event's
 * matched steps from last to first, so one event never advances a chain
 * twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "codec.h"
#include "rule_kinds.h"
#include "sequence.h"

struct link {
    int64_t ts;
    uint32_t off, len;    /* event id in chain->bytes */
    uint32_t flen;        /* then its fields (alert_fields.h); 0: not known */
};

/* One allocation: the links, then each link's event id and fields. */
struct chain {
    uint32_t n;
    char *bytes;
    struct link l[];
};

/* One allocation: the struct, then c[], then chain[] (seqstate_new()).
 * Three were 48 to 64 bytes more per live key (bench/README.md, "Memory
 * per key"). */
struct fw_seqstate {
    uint32_t nsteps;
    int64_t *c;           /* [nsteps - 1]: the last step's c is never read */
    struct chain **chain; /* [nsteps - 1] */
};

static fw_seqstate *seqstate_new(uint32_t nsteps)
{
    size_t n = nsteps - 1;
    fw_seqstate *s = fw_xcalloc(1, sizeof *s + n * (sizeof *s->c + sizeof *s->chain));
    s->nsteps = nsteps;
    s->c = (int64_t *)(void *)(s + 1);
    s->chain = (struct chain **)(void *)(s->c + n);
    for (size_t i = 0; i < n; i++)
        s->c[i] = FW_TS_NONE;
    return s;
}

static struct chain *chain_extend(const struct chain *prev, const fw_update *u)
{
    uint32_t n = prev ? prev->n + 1 : 1;
    size_t bytes = (size_t)u->event_id_len + u->fields_len;
    for (uint32_t i = 0; prev && i < prev->n; i++)
        bytes += (size_t)prev->l[i].len + prev->l[i].flen;
    struct chain *c = fw_xmalloc(sizeof *c + n * sizeof c->l[0] + bytes + 1);
    c->n = n;
    c->bytes = (char *)&c->l[n];
    size_t off = 0;
    for (uint32_t i = 0; prev && i < prev->n; i++) {
        size_t k = (size_t)prev->l[i].len + prev->l[i].flen;
        c->l[i] = prev->l[i];
        c->l[i].off = (uint32_t)off;
        memcpy(c->bytes + off, prev->bytes + prev->l[i].off, k);
        off += k;
    }
    c->l[n - 1] = (struct link){ u->ts, (uint32_t)off, u->event_id_len, u->fields_len };
    memcpy(c->bytes + off, u->event_id, u->event_id_len);
    if (u->fields_len)
        memcpy(c->bytes + off + u->event_id_len, u->fields, u->fields_len);
    return c;
}

void fw_seqstate_free(fw_seqstate *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i + 1 < s->nsteps; i++)
        free(s->chain[i]);
    free(s);
}

static void step_json(fw_buf *out, uint32_t step, const char *id, uint32_t idlen,
                      int64_t ts, const char *fields, uint32_t flen)
{
    fw_buf_printf(out, "{\"step\":%u,\"event_id\":", step);
    fw_buf_json_str(out, id, idlen, SIZE_MAX);
    fw_buf_puts(out, ",\"ts\":");
    fw_buf_i64(out, ts);
    if (flen) {
        fw_buf_putc(out, ',');
        fw_buf_put(out, fields, flen);
    }
    fw_buf_putc(out, '}');
}

static void chain_json(fw_buf *out, const struct chain *prev, const fw_update *u)
{
    fw_buf_putc(out, '[');
    for (uint32_t i = 0; prev && i < prev->n; i++) {
        const struct link *l = &prev->l[i];
        step_json(out, i + 1, prev->bytes + l->off, l->len, l->ts,
                  prev->bytes + l->off + l->len, l->flen);
        fw_buf_putc(out, ',');
    }
    step_json(out, prev ? prev->n + 1 : 1, u->event_id, u->event_id_len, u->ts,
              u->fields, u->fields_len);
    fw_buf_putc(out, ']');
}

bool fw_sequence_apply(fw_seqstate **sp, const fw_rule *r, int64_t *m,
                       const fw_update *u, fw_buf *evidence, struct fw_state *st,
                       fw_update *with_fields)
{
    fw_seqstate *s = *sp;
    if (!s) {
        s = seqstate_new(r->nsteps);
        *sp = s;
    }
    int64_t t = u->ts;
    if (t > *m)
        *m = t;
    int64_t cutoff = *m - r->within_ms;
    for (uint32_t j = 0; j + 1 < s->nsteps; j++) {
        if (s->c[j] != FW_TS_NONE && s->c[j] <= cutoff) {
            s->c[j] = FW_TS_NONE;
            free(s->chain[j]);
            s->chain[j] = NULL;
        }
    }

    uint32_t i = u->step;
    bool last = i + 1 == s->nsteps;
    if (i == 0) {
        /* c_1 = max(c_1, t); an event already expired stays absent. */
        if (t > cutoff && (s->c[0] == FW_TS_NONE || t > s->c[0])) {
            s->c[0] = t;
            free(s->chain[0]);
            s->chain[0] = chain_extend(NULL, fw_state_fields(st, r, u, with_fields));
        }
        return false;
    }
    int64_t prev = s->c[i - 1];
    if (prev == FW_TS_NONE || prev > t)
        return false;
    if (last) {
        const fw_update *uf = fw_state_fields(st, r, u, with_fields);
        if (uf != with_fields)
            *with_fields = *uf;
        evidence->len = 0;
        chain_json(evidence, s->chain[i - 1], with_fields);
        return true;
    }
    if (s->c[i] == FW_TS_NONE || prev > s->c[i]) {
        s->c[i] = prev;
        free(s->chain[i]);
        s->chain[i] = chain_extend(s->chain[i - 1], fw_state_fields(st, r, u, with_fields));
    }
    return false;
}

/* ---- checkpoints ---------------------------------------------------------- *
 * nsteps, then per step but the last: c, n, n × (ts, event id[, fields]).
 * The fields are there in the encoding of flag SEQ_FLAG_FIELDS
 * (kind_sequence.c); a chain of the older one (no fields) loads with its
 * steps' fields unknown, and its alert's evidence shows those steps
 * without "fields". */

void fw_seqstate_save(const fw_seqstate *s, fw_buf *out)
{
    fw_enc_u64(out, s->nsteps);
    for (uint32_t i = 0; i + 1 < s->nsteps; i++) {
        const struct chain *c = s->chain[i];
        fw_enc_u64(out, (uint64_t)s->c[i]);
        fw_enc_u64(out, c ? c->n : 0);
        for (uint32_t j = 0; c && j < c->n; j++) {
            fw_enc_u64(out, (uint64_t)c->l[j].ts);
            fw_enc_bytes(out, c->bytes + c->l[j].off, c->l[j].len);
            fw_enc_bytes(out, c->bytes + c->l[j].off + c->l[j].len, c->l[j].flen);
        }
    }
}

int fw_seqstate_load(fw_seqstate **sp, FILE *f, bool with_fields)
{
    uint64_t nsteps;
    if (fw_get_u64(f, &nsteps) || nsteps < 2 || nsteps > 64)
        return -1;
    fw_seqstate *s = seqstate_new((uint32_t)nsteps);
    *sp = s;
    for (uint32_t i = 0; i + 1 < s->nsteps; i++) {
        uint64_t c, n;
        if (fw_get_u64(f, &c) || fw_get_u64(f, &n) || n > 64)
            return -1;
        s->c[i] = (int64_t)c;
        for (uint64_t j = 0; j < n; j++) {
            uint64_t ts;
            fw_update u = { 0 };
            char *id, *fields = NULL;
            uint32_t len, flen = 0;
            if (fw_get_u64(f, &ts) || fw_get_bytes(f, &id, &len, 1u << 20))
                return -1;
            if (with_fields && fw_get_bytes(f, &fields, &flen, 1u << 20)) {
                free(id);
                return -1;
            }
            u.ts = (int64_t)ts;
            u.event_id = id;
            u.event_id_len = len;
            u.fields = fields;
            u.fields_len = flen;
            struct chain *next = chain_extend(s->chain[i], &u);
            free(s->chain[i]);
            s->chain[i] = next;
            free(id);
            free(fields);
        }
    }
    return 0;
}

/* alert.c — one alert as a JSON line (SPEC §3), and its id.
 *
 * Owns the alert's wire format.  The alert_id is the first 128 bits of
 * SHA-256 over the length-prefixed (rule_id, subject, event_id), in hex: the
 * same alert produced twice — by a replay, or by a daemon restarted after a
 * crash — carries the same id, and no choice of strings can make two
 * different triples collide by concatenation.  Text is written directly (no
 * cJSON tree) because this runs once per alert on the worker that owns the
 * key. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "fraudwatch/clock.h"
#include "sha256.h"

static void put_len(fw_sha256 *s, const char *p, size_t n)
{
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    fw_sha256_update(s, len, 8);
    fw_sha256_update(s, p, n);
}

void fw_alert_id(const char *rule_id, const char *subject, size_t slen,
                 const char *event_id, size_t idlen, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    fw_sha256 s;
    unsigned char d[32];
    fw_sha256_init(&s);
    put_len(&s, rule_id, strlen(rule_id));
    put_len(&s, subject, slen);
    put_len(&s, event_id, idlen);
    fw_sha256_final(&s, d);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[32] = '\0';
}

void fw_micro_text(fw_buf *out, fw_i128 micro)
{
    /* Exact decimal: integer part, then up to six fraction digits. */
    char tmp[64];
    size_t n = 0;
    bool neg = micro < 0;
    fw_u128 u = neg ? (fw_u128)0 - (fw_u128)micro
                     : (fw_u128)micro;
    unsigned frac = (unsigned)(u % 1000000);
    u /= 1000000;
    do {
        tmp[n++] = (char)('0' + (unsigned)(u % 10));
        u /= 10;
    } while (u);
    if (neg)
        fw_buf_putc(out, '-');
    while (n)
        fw_buf_putc(out, tmp[--n]);
    if (frac) {
        char f[8];
        snprintf(f, sizeof f, "%06u", frac);
        size_t k = 6;
        while (f[k - 1] == '0')
            k--;
        fw_buf_putc(out, '.');
        fw_buf_put(out, f, k);
    }
}

/* What the officer reads (SPEC §3): the rule's description, action and
 * tags, and the values of the event (taken at scan time, alert_fields.c).
 * None of it is part of the alert_id. */
static void put_officer_content(fw_buf *out, const fw_rule *r, const fw_update *u)
{
    if (r->description) {
        fw_buf_puts(out, ",\"description\":");
        fw_buf_json_str(out, r->description, strlen(r->description), SIZE_MAX);
    }
    if (r->action) {
        fw_buf_puts(out, ",\"action\":");
        fw_buf_json_str(out, r->action, strlen(r->action), SIZE_MAX);
    }
    if (r->ntags) {
        fw_buf_puts(out, ",\"tags\":[");
        for (uint32_t i = 0; i < r->ntags; i++) {
            if (i)
                fw_buf_putc(out, ',');
            fw_buf_json_str(out, r->tags[i], strlen(r->tags[i]), SIZE_MAX);
        }
        fw_buf_putc(out, ']');
    }
    if (u->fields_len) {
        fw_buf_putc(out, ',');
        fw_buf_put(out, u->fields, u->fields_len);
    }
}

void fw_alert_render(fw_buf *out, const fw_rule *r, uint64_t version,
                     const char *subject, size_t slen, const fw_update *u,
                     const char *evidence, size_t evlen)
{
    static const char *const sev[] = { "low", "medium", "high", "critical" };
    char id[33];
    fw_alert_id(r->id, subject, slen, u->event_id, u->event_id_len, id);
    fw_buf_puts(out, "{\"alert_id\":\"");
    fw_buf_puts(out, id);
    fw_buf_puts(out, "\",\"rule_id\":");
    fw_buf_json_str(out, r->id, strlen(r->id), SIZE_MAX);
    fw_buf_puts(out, ",\"rule_name\":");
    fw_buf_json_str(out, r->name, strlen(r->name), SIZE_MAX);
    fw_buf_printf(out, ",\"severity\":\"%s\",\"subject\":", sev[r->severity]);
    fw_buf_json_str(out, subject, slen, SIZE_MAX);
    fw_buf_puts(out, ",\"event_id\":");
    fw_buf_json_str(out, u->event_id, u->event_id_len, SIZE_MAX);
    fw_buf_puts(out, ",\"event_ts\":");
    fw_buf_i64(out, u->ts);
    fw_buf_puts(out, ",\"detected_ts\":");
    fw_buf_i64(out, fw_wall_ms());
    fw_buf_puts(out, ",\"ruleset_version\":");
    fw_buf_i64(out, (int64_t)version);
    fw_buf_puts(out, ",\"evidence\":");
    fw_buf_put(out, evidence, evlen);
    put_officer_content(out, r, u);
    fw_buf_puts(out, "}\n");
}

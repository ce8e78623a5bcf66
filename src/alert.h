/* alert.h — an alert's JSON line and its id (alert.c). */
#ifndef FRAUDWATCH_ALERT_H
#define FRAUDWATCH_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "fraudwatch/buf.h"
#include "update.h"

void fw_alert_render(fw_buf *out, const fw_rule *r, uint64_t version,
                     const char *subject, size_t slen, const fw_update *u,
                     const char *evidence, size_t evlen);
/* 32 hex digits + NUL: deterministic in (rule_id, subject, event_id). */
void fw_alert_id(const char *rule_id, const char *subject, size_t slen,
                 const char *event_id, size_t idlen, char out[33]);
void fw_micro_text(fw_buf *out, fw_i128 micro);

#endif

/* fraudwatch — one input event: JSON text → checked, typed fields.
 *
 * An event is valid when it is a JSON object of at most `max_bytes` bytes of
 * valid UTF-8 with a non-empty string `event_id`, a non-empty string `type`
 * and an integer `ts` (epoch milliseconds, 0 .. FW_TS_MAX).  Anything else is
 * malformed, and fw_event_parse() says why in words an operator can act on.
 * Fields are read by dotted path (see fw_path in ruleset internals). */
#ifndef FRAUDWATCH_EVENT_H
#define FRAUDWATCH_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fraudwatch/arena.h"
#include "fraudwatch/text.h"

#define FW_TS_MAX INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */

typedef struct fw_event {
    cJSON *root;
    const char *event_id;
    size_t event_id_len;
    const char *type;
    int64_t ts;
    /* The message the tree was parsed from (not a copy; valid while the
     * tree is): alert fields take numbers from it exactly as written. */
    const char *raw;
    size_t raw_len;
} fw_event;

/* Makes cJSON allocate from the calling thread's arena while `a` is set
 * (NULL: back to malloc).  Call fw_event_init() once before any thread. */
void fw_event_init(void);
void fw_event_use_arena(fw_arena *a);
/* The same, returning the arena that was set (to put it back). */
fw_arena *fw_event_swap_arena(fw_arena *a);

/* Parses one event.  On success returns true and fills *ev (its memory lives
 * in the thread's arena, or must be released with fw_event_release() when no
 * arena is set).  On failure returns false and sets *reason to a static
 * message. */
bool fw_event_parse(const char *data, size_t len, size_t max_bytes,
                    fw_event *ev, const char **reason);
void fw_event_release(fw_event *ev);

/* cJSON_GetObjectItemCaseSensitive(obj, name), inlined, with the first
 * byte compared before strcmp is called: field lookups by name were a sixth
 * of the engine's instructions.  The same answer, also for duplicate keys
 * (the first) and a member without a name (the search stops there). */
static inline const cJSON *fw_member(const cJSON *obj, const char *name)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (!c->string)
            return NULL;
        if (c->string[0] == name[0] && (!name[0] || strcmp(c->string + 1, name + 1) == 0))
            return c;
    }
    return NULL;
}

/* The text of a string or number field (for keys, subjects, distinct values):
 * a string as itself, a number by fw_numtext() into `buf`.  False for any
 * other type.  *len receives the length. */
bool fw_value_text(const cJSON *v, char *buf, const char **text, size_t *len);

#endif

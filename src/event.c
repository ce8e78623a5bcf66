/* event.c — JSON text → fw_event, and the text form of values.
 *
 * Owns the rules for what a well-formed event is (SPEC §1) and the one
 * definition of "a value as text" that keys, subjects and distinct counts
 * share.  The tree is cJSON's, built by event_json.c (the same tree as
 * cJSON's parser, faster); it and cJSON allocate through the calling
 * thread's arena when one is set: a worker parses an event, matches it and
 * throws the whole tree away with one arena reset instead of a free() per
 * node. */
#include "fraudwatch/event.h"

#include "event_json.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local fw_arena *tl_arena;

static void *hook_malloc(size_t n)
{
    return tl_arena ? fw_arena_alloc(tl_arena, n) : malloc(n);
}

static void hook_free(void *p)
{
    if (!tl_arena)
        free(p);
}

void fw_event_init(void)
{
    cJSON_Hooks hooks = { .malloc_fn = hook_malloc, .free_fn = hook_free };
    cJSON_InitHooks(&hooks);
}

void fw_event_use_arena(fw_arena *a) { tl_arena = a; }

fw_arena *fw_event_swap_arena(fw_arena *a)
{
    fw_arena *prev = tl_arena;
    tl_arena = a;
    return prev;
}

bool fw_value_text(const cJSON *v, char *buf, const char **text, size_t *len)
{
    if (cJSON_IsString(v) && v->valuestring) {
        *text = v->valuestring;
        *len = strlen(v->valuestring);
        return true;
    }
    if (cJSON_IsNumber(v)) {
        *len = fw_numtext(v->valuedouble, buf);
        *text = buf;
        return true;
    }
    return false;
}

static bool nonempty_string(const cJSON *v)
{
    return cJSON_IsString(v) && v->valuestring && v->valuestring[0];
}

bool fw_event_parse(const char *data, size_t len, size_t max_bytes,
                    fw_event *ev, const char **reason)
{
    memset(ev, 0, sizeof *ev);
    if (len > max_bytes) {
        *reason = "larger than the maximum event size";
        return false;
    }
    const char *end = NULL;
    bool utf8 = false;
    cJSON *root = fw_json_parse(data, len, tl_arena, &end, &utf8);
    ev->root = root;
    bool trailing = false;
    if (root) {
        for (const char *q = end; q < data + len; q++)
            if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n') {
                trailing = true;
                break;
            }
    }
    /* The parser checked the strings; what is left is ASCII unless the
     * parse failed or trailing bytes follow: then the whole message is
     * checked, UTF-8 being the first reason to give. */
    if ((!root || !utf8 || trailing) && !fw_utf8_valid(data, len)) {
        *reason = "not valid UTF-8";
        goto bad;
    }
    if (!root) {
        *reason = "not valid JSON";
        return false;
    }
    if (trailing) {
        *reason = "trailing data after the JSON value";
        goto bad;
    }
    if (!cJSON_IsObject(root)) {
        *reason = "not a JSON object";
        goto bad;
    }
    const cJSON *id = fw_member(root, "event_id");
    if (!id) {
        *reason = "missing event_id";
        goto bad;
    }
    if (!nonempty_string(id)) {
        *reason = "event_id is not a non-empty string";
        goto bad;
    }
    const cJSON *type = fw_member(root, "type");
    if (!type) {
        *reason = "missing type";
        goto bad;
    }
    if (!nonempty_string(type)) {
        *reason = "type is not a non-empty string";
        goto bad;
    }
    const cJSON *ts = fw_member(root, "ts");
    if (!ts) {
        *reason = "missing ts";
        goto bad;
    }
    if (!cJSON_IsNumber(ts) || ts->valuedouble != floor(ts->valuedouble)) {
        *reason = "ts is not an integer";
        goto bad;
    }
    if (ts->valuedouble < 0 || ts->valuedouble > (double)FW_TS_MAX) {
        *reason = "ts out of range (0 .. 253402300799999 ms)";
        goto bad;
    }
    ev->event_id = id->valuestring;
    ev->event_id_len = strlen(id->valuestring);
    ev->type = type->valuestring;
    ev->ts = (int64_t)ts->valuedouble;
    ev->raw = data;
    ev->raw_len = len;
    return true;
bad:
    fw_event_release(ev);
    return false;
}

void fw_event_release(fw_event *ev)
{
    if (ev->root)
        cJSON_Delete(ev->root);
    ev->root = NULL;
}

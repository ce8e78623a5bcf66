/* fuzz_event.c — bytes → one event (src/event.c).
 *
 * The input is one message as it comes off Kafka (not NUL-terminated).  It
 * is parsed with and without a thread arena (the two allocation paths of
 * fw_event_parse), which must agree; a parsed event must satisfy SPEC §1
 * (object, non-empty event_id and type, integer ts in range); every number
 * in the tree must come out of fw_numtext as the shortest text that reads
 * back as the same double, laid out like JavaScript's Number#toString;
 * fw_utf8_valid must agree with a plain reference validator; and the same
 * bytes must be refused as too large under a limit one byte smaller.  The
 * input's leading bytes, read as doubles, go through fw_numtext as well, so
 * NaN payloads, subnormals and huge values are covered directly.  The
 * event parser (src/event_json.c) must accept exactly what cJSON's own
 * parser accepts, end at the same byte and build the same tree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/arena.h"
#include "event_json.h"
#include "fraudwatch/event.h"
#include "fuzz.h"
#include "../json_diff.h"

#define MAX_EVENT (1u << 20)

static fw_arena *arena;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fw_event_init();
    arena = fw_arena_new(64 * 1024);
    return 0;
}

/* Significant digits of a number text ("-1.25e+3" → 3, "0.0015" → 2). */
static int sig_digits(const char *t)
{
    int n = 0, lead = 1, trailing_zeros = 0;
    for (const char *p = t; *p && *p != 'e'; p++) {
        if (*p < '0' || *p > '9')
            continue;
        if (lead && *p == '0')
            continue;
        lead = 0;
        n++;
        trailing_zeros = *p == '0' ? trailing_zeros + 1 : 0;
    }
    /* "1200" has two significant digits: trailing zeros of an integer do
     * not count (JavaScript pads them); those after a point never occur. */
    return n - trailing_zeros;
}

static void check_numtext(double v)
{
    char buf[FW_NUMTEXT_MAX + 8];
    memset(buf, 'Z', sizeof buf);
    size_t n = fw_numtext(v, buf);
    FZ_CHECKF(n < FW_NUMTEXT_MAX && strlen(buf) == n, "len %zu for %a", n, v);
    FZ_CHECK(buf[FW_NUMTEXT_MAX] == 'Z');
    if (isnan(v)) {
        FZ_CHECK(strcmp(buf, "NaN") == 0);
        return;
    }
    if (isinf(v)) {
        FZ_CHECK(strcmp(buf, v < 0 ? "-Infinity" : "Infinity") == 0);
        return;
    }
    /* Reads back as the same value. */
    char *end;
    double back = strtod(buf, &end);
    FZ_CHECKF(*end == '\0' && back == v, "%a -> \"%s\"", v, buf);
    if (v == 0) {
        FZ_CHECK(strcmp(buf, "0") == 0);
        return;
    }
    /* JavaScript's layout: an exponent exactly when |v| >= 1e21 or < 1e-6. */
    bool has_e = strchr(buf, 'e') != NULL;
    FZ_CHECKF(has_e == (fabs(v) >= 1e21 || fabs(v) < 1e-6), "%a -> \"%s\"", v, buf);
    FZ_CHECKF(buf[0] != '+' && !strstr(buf, ".e") && buf[n - 1] != '.',
              "%a -> \"%s\"", v, buf);
    if (strchr(buf, '.') && !has_e)
        FZ_CHECKF(buf[n - 1] != '0', "%a -> \"%s\"", v, buf);
    /* Shortest: the correctly rounded text with one digit fewer does not
     * read back (the nearest shorter decimal; if it misses, all do). */
    int k = sig_digits(buf);
    FZ_CHECKF(k >= 1 && k <= 17, "%a -> \"%s\" (%d digits)", v, buf, k);
    if (k > 1) {
        char shorter[40];
        snprintf(shorter, sizeof shorter, "%.*e", k - 2, v);
        FZ_CHECKF(strtod(shorter, NULL) != v, "%a -> \"%s\" but \"%s\" reads back",
                  v, buf, shorter);
    }
}

static void walk(const cJSON *node, int depth)
{
    for (const cJSON *c = node; c; c = c->next) {
        char buf[FW_NUMTEXT_MAX];
        const char *text;
        size_t len;
        bool ok = fw_value_text(c, buf, &text, &len);
        FZ_CHECK(ok == (cJSON_IsNumber(c) || (cJSON_IsString(c) && c->valuestring)));
        if (cJSON_IsNumber(c)) {
            check_numtext(c->valuedouble);
            FZ_CHECK(text == buf && len == strlen(buf));
        } else if (ok) {
            FZ_CHECK(len == strlen(c->valuestring));
        }
        if (c->child) {
            FZ_CHECK(depth < 1100); /* cJSON's nesting limit is 1000 */
            walk(c->child, depth + 1);
        }
    }
}

static void check_event(const fw_event *ev, const char *data, size_t size)
{
    FZ_CHECK(cJSON_IsObject(ev->root));
    FZ_CHECK(ev->event_id && ev->event_id[0] && ev->event_id_len == strlen(ev->event_id));
    FZ_CHECK(ev->type && ev->type[0]);
    FZ_CHECK(ev->ts >= 0 && ev->ts <= FW_TS_MAX);
    FZ_CHECK(fw_utf8_valid(data, size));
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev->root, "event_id");
    FZ_CHECK(cJSON_IsString(id) && id->valuestring == ev->event_id);
    walk(ev->root->child, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_EVENT + 16)
        return 0;
    const char *s = (const char *)data;

    /* The UTF-8 fast path against the reference, on the whole input and on
     * every suffix alignment of its first bytes (the 8-byte ASCII skip). */
    bool valid = fw_utf8_valid(s, size);
    FZ_CHECKF(valid == fz_utf8_ref(data, size), "fw_utf8_valid says %d", valid);
    for (size_t off = 1; off < 8 && off < size; off++)
        FZ_CHECK(fw_utf8_valid(s + off, size - off) == fz_utf8_ref(data + off, size - off));

    /* Raw doubles. */
    for (size_t off = 0; off + sizeof(double) <= size && off < 64; off += sizeof(double)) {
        double v;
        memcpy(&v, data + off, sizeof v);
        check_numtext(v);
    }

    /* The event parser against cJSON's, tree for tree. */
    {
        const char *end_c = NULL, *end_f = NULL;
        cJSON *c = size ? cJSON_ParseWithLengthOpts(s, size, &end_c, 0) : NULL;
        bool utf8 = false;
        cJSON *f = fw_json_parse(s, size, NULL, &end_f, &utf8);
        FZ_CHECKF((c == NULL) == (f == NULL), "cJSON %s, fw_json_parse %s",
                  c ? "accepts" : "refuses", f ? "accepts" : "refuses");
        if (c) {
            const char *why = fw_json_tree_diff(c, f);
            FZ_CHECKF(end_c == end_f && !why, "end %td vs %td, %s", end_c - s, end_f - s,
                      why ? why : "same tree");
            FZ_CHECK(utf8 == fw_utf8_valid(s, (size_t)(end_f - s)));
        }
        cJSON_Delete(c);
        cJSON_Delete(f);
    }

    /* Without an arena: malloc'd tree, released by fw_event_release. */
    fw_event ev;
    const char *reason = NULL;
    bool ok = fw_event_parse(s, size, MAX_EVENT, &ev, &reason);
    const char *reason1 = reason;
    if (ok) {
        check_event(&ev, s, size);
        fw_event_release(&ev);
        FZ_CHECK(ev.root == NULL);
    } else {
        FZ_CHECK(reason && reason[0]);
        FZ_CHECK(ev.root == NULL);
    }

    /* With an arena, as a worker parses: must agree exactly. */
    fw_event_use_arena(arena);
    reason = NULL;
    bool ok2 = fw_event_parse(s, size, MAX_EVENT, &ev, &reason);
    FZ_CHECK(ok2 == ok);
    if (ok2)
        check_event(&ev, s, size);
    else
        FZ_CHECK(reason == reason1);
    fw_event_use_arena(NULL);
    fw_arena_reset(arena);

    /* One byte over the limit is refused before anything is parsed. */
    if (size > 0) {
        reason = NULL;
        FZ_CHECK(!fw_event_parse(s, size, size - 1, &ev, &reason));
        FZ_CHECK(reason && strstr(reason, "larger than the maximum event size"));
    }
    return 0;
}

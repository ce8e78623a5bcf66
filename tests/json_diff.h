/* json_diff.h — tree-for-tree comparison of two cJSON trees, for the tests
 * that hold src/event_json.c to cJSON's own parser (tests/test_json.c,
 * tests/fuzz/fuzz_event.c). */
#ifndef FW_TEST_JSON_DIFF_H
#define FW_TEST_JSON_DIFF_H

#include <string.h>

#include <cjson/cJSON.h>

/* Why two trees differ, or NULL. */
static inline const char *fw_json_tree_diff(const cJSON *a, const cJSON *b)
{
    for (; a || b; a = a->next, b = b->next) {
        if (!a || !b)
            return "one list is longer";
        if (a->type != b->type)
            return "type";
        if ((a->string == NULL) != (b->string == NULL) ||
            (a->string && strcmp(a->string, b->string) != 0))
            return "key";
        if ((a->valuestring == NULL) != (b->valuestring == NULL) ||
            (a->valuestring && strcmp(a->valuestring, b->valuestring) != 0))
            return "string value";
        if (memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0)
            return "valuedouble";
        if (a->valueint != b->valueint)
            return "valueint";
        if ((a->child == NULL) != (b->child == NULL))
            return "child";
        if (a->child) {
            /* cJSON: the first child's prev is the last child. */
            const cJSON *la = a->child, *lb = b->child;
            while (la->next)
                la = la->next;
            while (lb->next)
                lb = lb->next;
            if (a->child->prev != la || b->child->prev != lb)
                return "first child's prev is not the last child";
            const char *why = fw_json_tree_diff(a->child, b->child);
            if (why)
                return why;
        }
        if (a->next && a->next->prev != a)
            return "prev link (ours)";
    }
    return NULL;
}

#endif

/* cond_forms.h — the table of condition forms (see cond_forms.c). */
#ifndef FRAUDWATCH_COND_FORMS_H
#define FRAUDWATCH_COND_FORMS_H

#include <stdbool.h>
#include <stddef.h>

#include "fraudwatch/buf.h"
#include "match.h"
#include "rules_parse.h"

struct fw_cond_form {
    /* The member that selects the form: {"field": F, "regex": P}. */
    const char *name;
    /* The other members it accepts (NULL-terminated; "field" is implied
     * when `has_field`). */
    const char *const *members;
    /* Reads one event field, named by "field".  A form without a field
     * ("any") must be the only member of its condition. */
    bool has_field;
    /* `v` is the value of the member `name`, `place` the condition's
     * ("where[0]"); `out->form` and (with a field) `out->path` are set.
     * Reports and returns false when wrong. */
    bool (*parse)(fw_loader *L, const cJSON *cond, const cJSON *v,
                  const char *place, int depth, fw_cond *out);
    /* Does it hold for the event `root`?  `v` is the field (NULL when
     * missing, or when the form has no field). */
    bool (*holds)(fw_matcher *m, const cJSON *root, const fw_cond *c,
                  const cJSON *v);
    /* Appends the evidence members after {"field":F (or after { for a form
     * without a field) — the closing brace is the caller's. */
    void (*explain)(fw_matcher *m, const cJSON *root, const fw_cond *c,
                    const cJSON *v, fw_buf *out);
    /* Frees what parse allocated, besides the path (also after a failed
     * parse: every member starts zeroed). */
    void (*free)(fw_cond *c);
};

extern const fw_cond_form fw_cond_forms[];
extern const size_t fw_cond_nforms;

#endif

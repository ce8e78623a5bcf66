/* rules_parse.h — what the rule loader (rules_load.c) offers the modules
 * that parse one part of the rule language for it: the condition forms
 * (cond_forms.c) today.  Every function reports its own errors, with the
 * place ("calls.json: rule R101: where[0].regex: …"), and returns false;
 * the loader keeps going and refuses the set at the end. */
#ifndef FRAUDWATCH_RULES_PARSE_H
#define FRAUDWATCH_RULES_PARSE_H

#include <stdbool.h>

#include "ruleset_impl.h"

typedef struct fw_loader fw_loader;

#define FW_MAX_ANY_DEPTH 16     /* "any" inside "any" */
#define FW_MAX_PATTERN 65536    /* bytes of one regex */

void fw_lx_report(fw_loader *L, const char *place, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A member by its exact (case-sensitive) name, or NULL. */
const cJSON *fw_lx_member(const cJSON *obj, const char *name);
/* A field path ("payer.account"), split into its parts. */
bool fw_lx_path(fw_loader *L, const cJSON *v, const char *place, fw_path *out);
/* Compiles (and JIT-compiles) a pattern; quotes PCRE2's message and offset. */
/* The condition's fw_cond.search: the same for the same field, pattern
 * and flags anywhere in the set (a regex form, its path parsed). */
uint32_t fw_lx_search_slot(fw_loader *L, const fw_cond *c);
bool fw_lx_regex(fw_loader *L, const char *place, const char *pattern,
                 bool caseless, pcre2_code **out);
/* An array of conditions (each through the condition-form table). */
bool fw_lx_conds(fw_loader *L, const cJSON *arr, const char *place, int depth,
                 fw_cond **out, uint32_t *nout);
/* The watchlist called `name` in the set being loaded, or NULL. */
const fw_list *fw_lx_list(fw_loader *L, const char *name);
/* "a, b, c" — the watchlists defined, for an error message. */
void fw_lx_list_names(fw_loader *L, char *buf, size_t len);
/* "<", "<=", ">", ">=", "==", "!=". */
bool fw_lx_op(const char *s, enum fw_op *op);

#endif

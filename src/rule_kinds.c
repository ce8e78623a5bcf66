/* rule_kinds.c — the table of rule kinds (rule_kinds.h says what a row
 * is; each row lives in its kind_*.c file).
 *
 * Indexed by the kind's code, which is part of every state signature and
 * so of checkpoints: codes are never reused.  The loader picks a rule's
 * kind by the member it names (the last row whose selector is present),
 * or the row without a selector. */
#include "rule_kinds.h"

const fw_rule_kind_ops *const fw_rule_kinds[FW_RULE_NKINDS] = {
    [FW_RULE_PLAIN] = &fw_kind_plain,
    [FW_RULE_THRESHOLD] = &fw_kind_threshold,
    [FW_RULE_SEQUENCE] = &fw_kind_sequence,
};

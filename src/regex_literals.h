/* regex_literals.h — the literals a regex cannot match without, and one
 * scan of a text for many of them (regex_literals.c). */
#ifndef FW_REGEX_LITERALS_H
#define FW_REGEX_LITERALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* At most this many literals in one set, and in one scan. */
#define FW_LITS_MAX 64

/* A set of byte strings, each at least 2 bytes: every match of the
 * pattern contains one of them. */
typedef struct fw_litset {
    char *lit[FW_LITS_MAX];
    uint32_t len[FW_LITS_MAX];
    uint32_t n;
} fw_litset;

/* The literals of `pattern` (a PCRE2 pattern that compiled, UTF mode):
 * true and `out` filled, or false when the pattern uses anything this
 * reading does not follow (caseless, escapes other than punctuation and
 * the plain classes, groups other than ( and (?:, a literal shorter than
 * two bytes, more than FW_LITS_MAX) — then nothing is known and the
 * regex must always run.  Free `out` with fw_litset_clear. */
bool fw_regex_literals(const char *pattern, bool caseless, fw_litset *out);
void fw_litset_clear(fw_litset *s);

/* A scan for up to FW_LITS_MAX literals (each ≥ 2 bytes), numbered in the
 * order added: fw_litscan_run returns the bits of those found in t. */
typedef struct fw_litscan fw_litscan;
fw_litscan *fw_litscan_new(void);
/* Adds the literals of `s`; their bits, or 0 when they do not fit. */
uint64_t fw_litscan_add(fw_litscan *sc, const fw_litset *s);
/* t[n] must be readable (a NUL-terminated string: it is read, never
 * matched). */
uint64_t fw_litscan_run(const fw_litscan *sc, const char *t, size_t n);
void fw_litscan_free(fw_litscan *sc);

#endif

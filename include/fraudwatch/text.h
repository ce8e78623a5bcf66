/* fraudwatch — text rules shared by the engine, the metrics and the
 * config: UTF-8 validity and the one way numbers are spelled (text.c). */
#ifndef FRAUDWATCH_TEXT_H
#define FRAUDWATCH_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#define FW_NUMTEXT_MAX 32

/* True when the bytes are valid UTF-8 (RFC 3629: no surrogates, no overlongs). */
bool fw_utf8_valid(const char *s, size_t len);

/* The text of a number as fraudwatch compares and keys it: the shortest
 * digits that read back as the same double, laid out like JavaScript's
 * Number.prototype.toString (100.0 → "100", 1e21 → "1e+21", 1e-7 → "1e-7").
 * Writes at most FW_NUMTEXT_MAX bytes with the NUL; returns the length. */
size_t fw_numtext(double v, char *buf);

/* A command-line count: decimal digits only (no sign, no space), within
 * lo..hi; 0 and *out, or -1 leaving *out alone. */
int fw_parse_u64(const char *s, unsigned long long lo, unsigned long long hi,
                 unsigned long long *out);

#endif

/* fuzz.h — shared by the fuzz targets (libFuzzer entry points, input
 * splitting, invariant checks).  See tests/fuzz/README.md. */
#ifndef FW_FUZZ_H
#define FW_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points; standalone_main.c calls them to replay files. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parts of an input are separated by a line "%%": "A\n%%\nB" is A and B. */
#define FZ_SEP "\n%%\n"

typedef struct fz_part {
    const char *p;
    size_t n;
} fz_part;

/* Splits into at most `max` parts (the last part takes the rest). */
size_t fz_split(const char *data, size_t size, fz_part *parts, size_t max);

/* An exact-size heap copy (no terminator), so ASan sees any over-read. */
char *fz_dup(const char *p, size_t n);

/* A failed invariant: prints it and aborts, which libFuzzer records as a
 * crash (and the standalone replay as a failed test). */
#define FZ_CHECK(cond) \
    ((cond) ? (void)0 : fz_fail(__FILE__, __LINE__, #cond, NULL))
#define FZ_CHECKF(cond, ...) \
    ((cond) ? (void)0 : fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__))
void fz_fail(const char *file, int line, const char *what, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* Reference UTF-8 check (RFC 3629), written for clarity, not speed. */
bool fz_utf8_ref(const unsigned char *s, size_t n);

#endif

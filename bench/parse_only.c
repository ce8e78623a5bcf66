/* bench/parse_only.c — the parsing floor of the replay benchmark.
 *
 * What it does: reads a JSONL file into memory, then, on one thread, parses
 * every non-empty line with cJSON_ParseWithLengthOpts and frees the tree with
 * cJSON_Delete, timing only that loop.  Prints lines, seconds and events/s.
 *
 * Why it is shaped so: `fraudwatch replay` cannot be faster per thread than
 * turning each line into a JSON tree, which is what the engine does with the
 * same library.  Reading the file first keeps disk and page-cache effects out
 * of the figure; the parse call is the one the engine must use on
 * non-NUL-terminated Kafka payloads (length given, parse end checked), so the
 * two numbers compare like with like.  Nothing is looked up in the tree: this
 * is the floor, not a model of the engine.
 *
 * Usage: parse_only FILE [--runs N]   (N passes; reports each and the best)
 */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "parse_only: cannot open %s: %s\n", path, strerror(errno));
        exit(1);
    }
    size_t cap = 1 << 24, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fprintf(stderr, "parse_only: out of memory reading %s\n", path);
            exit(1);
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    if (ferror(f)) {
        fprintf(stderr, "parse_only: read %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    long runs = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            puts("usage: parse_only FILE [--runs N]\n"
                 "Single-thread cJSON parse + delete of every line of a JSONL file held in\n"
                 "memory; prints lines, seconds and events/s per run.");
            return 0;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "parse_only: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!path || runs < 1) {
        fprintf(stderr, "usage: parse_only FILE [--runs N]\n");
        return 2;
    }

    size_t len;
    char *buf = slurp(path, &len);
    double best = 0;
    for (long run = 0; run < runs; run++) {
        unsigned long lines = 0, bad = 0;
        double t0 = now();
        for (size_t pos = 0; pos < len;) {
            const char *line = buf + pos;
            const char *nl = memchr(line, '\n', len - pos);
            size_t n = nl ? (size_t)(nl - line) : len - pos;
            pos += n + (nl != NULL);
            if (n == 0)
                continue;
            const char *end = NULL;
            cJSON *doc = cJSON_ParseWithLengthOpts(line, n, &end, 0);
            lines++;
            if (!doc || !cJSON_IsObject(doc) || end != line + n)
                bad++;
            cJSON_Delete(doc);
        }
        double secs = now() - t0;
        double eps = secs > 0 ? (double)lines / secs : 0;
        if (eps > best)
            best = eps;
        printf("parse_only: %lu lines, %.6f s, %.0f events/s%s\n", lines, secs, eps,
               bad ? " (some lines malformed)" : "");
        if (bad)
            fprintf(stderr, "parse_only: %lu of %lu lines are not a complete JSON object\n",
                    bad, lines);
    }
    if (runs > 1)
        printf("parse_only: best of %ld runs: %.0f events/s\n", runs, best);
    free(buf);
    return 0;
}

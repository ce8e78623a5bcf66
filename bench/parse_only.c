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
 * --parser picks the parser: cjson (cJSON_ParseWithLengthOpts, the default
 * and the floor replay.sh compares against), fw (fraudwatch's own
 * src/event_json.c, the same tree for the same inputs, malloc'd and freed
 * with cJSON_Delete), fw-arena (fw_json_parse into an arena reset after each
 * line, as a worker parses).
 *
 * Usage: parse_only FILE [--runs N] [--parser cjson|fw|fw-arena]
 */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event_json.h"
#include "fraudwatch/arena.h"

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
    const char *parser = "cjson";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--parser") == 0 && i + 1 < argc) {
            parser = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            puts("usage: parse_only FILE [--runs N] [--parser cjson|fw|fw-arena]\n"
                 "Single-thread parse + delete of every line of a JSONL file held in\n"
                 "memory; prints lines, seconds and events/s per run.  --parser: cjson\n"
                 "(default), fw (fraudwatch's event parser, malloc), fw-arena (the same\n"
                 "into an arena reset per line, as the engine's workers parse).");
            return 0;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "parse_only: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    bool fw = strcmp(parser, "fw") == 0, in_arena = strcmp(parser, "fw-arena") == 0;
    if (!path || runs < 1 || (!fw && !in_arena && strcmp(parser, "cjson") != 0)) {
        fprintf(stderr, "usage: parse_only FILE [--runs N] [--parser cjson|fw|fw-arena]\n");
        return 2;
    }
    fw_arena *arena = in_arena ? fw_arena_new(64 * 1024) : NULL;

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
            cJSON *doc = fw || in_arena ? fw_json_parse(line, n, arena, &end, NULL)
                                        : cJSON_ParseWithLengthOpts(line, n, &end, 0);
            lines++;
            if (!doc || !cJSON_IsObject(doc) || end != line + n)
                bad++;
            if (arena)
                fw_arena_reset(arena);
            else
                cJSON_Delete(doc);
        }
        double secs = now() - t0;
        double eps = secs > 0 ? (double)lines / secs : 0;
        if (eps > best)
            best = eps;
        printf("parse_only: %s: %lu lines, %.6f s, %.0f events/s%s\n", parser, lines, secs, eps,
               bad ? " (some lines malformed)" : "");
        if (bad)
            fprintf(stderr, "parse_only: %lu of %lu lines are not a complete JSON object\n",
                    bad, lines);
    }
    if (runs > 1)
        printf("parse_only: %s: best of %ld runs: %.0f events/s\n", parser, runs, best);
    fw_arena_free(arena);
    free(buf);
    return 0;
}

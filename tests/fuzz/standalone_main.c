/* standalone_main.c — a fuzz target as a plain program: runs every file
 * named on the command line (a directory: every file in it, in name order,
 * dot-files skipped) through LLVMFuzzerTestOneInput once.  This is how the
 * seed corpora and the regression cases run in every build (plain, ASan,
 * TSan) without libFuzzer: meson's 'fuzz-corpus' suite.  A failed invariant
 * aborts; exit status 0 means every input passed. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            abort();
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len < cap)
            break;
        buf = realloc(buf, cap *= 2);
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: read error\n", path);
        free(buf);
        return -1;
    }
    fprintf(stderr, "running %s (%zu bytes)\n", path, len);
    /* An exact-size copy, as libFuzzer passes it. */
    char *data = fz_dup(buf, len);
    free(buf);
    LLVMFuzzerTestOneInput((const uint8_t *)data, len);
    free(data);
    return 0;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int no_dot(const struct dirent *d) { return d->d_name[0] != '.'; }

static int run_path(const char *path, size_t *count)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return run_file(path);
    }
    struct dirent **ents;
    int n = scandir(path, &ents, no_dot, name_cmp);
    if (n < 0) {
        perror(path);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, ents[i]->d_name);
        if (rc == 0 && run_path(sub, count) != 0)
            rc = -1;
        free(ents[i]);
    }
    free(ents);
    return rc;
}

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    size_t count = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++)
        if (run_path(argv[i], &count) != 0)
            rc = 1;
    printf("%zu inputs replayed%s\n", count, rc ? " (some could not be read)" : "");
    return rc;
}

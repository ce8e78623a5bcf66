/* fuzz_rules.c — bytes → a rule set (src/rules_load.c, src/ruleset.c).
 *
 * Input: parts separated by a line "%%" (see fuzz.h).  The first part is the
 * rules file "rules.json"; each later part starts with a file-name line
 * ("fraud.list", "more.json", anything) followed by that file's content; an
 * empty name line stands for "lN.list".  The files go to
 * fw_ruleset_load_files in memory, as the Redis store hands them over.
 *
 * Checked: a refused set has a message, and a short error buffer holds a
 * prefix of it (never an overrun, never an unterminated string; a zero-length
 * buffer is never written); an accepted set has unique, well-formed rule ids,
 * describes itself, and every value of every watchlist is a member of it.
 * LeakSanitizer checks that refusing frees everything. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/event.h"
#include "fraudwatch/ruleset.h"
#include "fuzz.h"
#include "ruleset_impl.h"

#define MAX_FILES 8
#define FZ_MAX_INPUT (256u << 10)

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fw_event_init();
    devnull = fopen("/dev/null", "w");
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

/* Every value line of a watchlist file is in the loaded list. */
static void check_list(const fw_ruleset *rs, const char *name, const char *data,
                       size_t len)
{
    size_t nlen = strlen(name) - strlen(".list");
    const fw_list *l = NULL;
    for (uint32_t i = 0; i < rs->nlists; i++)
        if (strlen(rs->lists[i].name) == nlen && !memcmp(rs->lists[i].name, name, nlen))
            l = &rs->lists[i];
    FZ_CHECKF(l, "list %s not loaded", name);
    size_t values = 0;
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *s = p, *e = nl ? nl : end;
        p = nl ? nl + 1 : end;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (s == e || *s == '#')
            continue;
        values++;
        fw_listentry en;   /* VALUE[<TAB>UNTIL[<TAB>REASON]]: the value is checked */
        char why[300];
        FZ_CHECK(fw_listline_split(s, (size_t)(e - s), &en, why, sizeof why) == 0);
        FZ_CHECKF(fw_list_contains(l, en.value, en.n, INT64_MIN), "list %s lacks \"%.*s\"",
                  name, (int)en.n, en.value);
    }
    FZ_CHECK(l->count <= values);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FZ_MAX_INPUT)
        return 0;
    fz_part parts[MAX_FILES];
    size_t nparts = fz_split((const char *)data, size, parts, MAX_FILES);

    fw_rulefile files[MAX_FILES];
    char *names[MAX_FILES] = { 0 };
    char *bodies[MAX_FILES] = { 0 };
    size_t nfiles = 0;
    for (size_t i = 0; i < nparts; i++) {
        const char *body = parts[i].p;
        size_t blen = parts[i].n;
        if (i == 0) {
            names[nfiles] = strdup("rules.json");
        } else {
            const char *nl = memchr(body, '\n', blen);
            size_t namelen = nl ? (size_t)(nl - body) : blen;
            if (namelen > 100)
                namelen = 100;
            if (namelen == 0 || memchr(body, '\0', namelen)) {
                names[nfiles] = malloc(16);
                snprintf(names[nfiles], 16, "l%zu.list", i);
            } else {
                names[nfiles] = strndup(body, namelen);
            }
            size_t skip = nl ? (size_t)(nl - body) + 1 : blen;
            body += skip;
            blen -= skip;
        }
        bodies[nfiles] = fz_dup(body, blen);
        files[nfiles] = (fw_rulefile){ names[nfiles], bodies[nfiles], blen };
        nfiles++;
    }

    static char err[128 * 1024];
    fw_ruleset *rs = NULL;
    memset(err, 'Z', 64);
    int rc = fw_ruleset_load_files(files, nfiles, 42, &rs, err, sizeof err);
    if (rc == 0) {
        FZ_CHECK(rs != NULL);
        FZ_CHECK(fw_ruleset_version(rs) == 42);
        size_t n = fw_ruleset_rule_count(rs);
        for (size_t i = 0; i < n; i++) {
            const char *id = fw_ruleset_rule_id(rs, i);
            size_t idlen = strlen(id);
            FZ_CHECKF(idlen >= 1 && idlen <= 64 && strspn(id,
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == idlen,
                      "rule id \"%s\"", id);
            for (size_t j = 0; j < i; j++)
                FZ_CHECKF(strcmp(id, fw_ruleset_rule_id(rs, j)) != 0, "duplicate id %s", id);
            const char *sev = fw_ruleset_rule_severity(rs, i);
            FZ_CHECK(!strcmp(sev, "low") || !strcmp(sev, "medium") ||
                     !strcmp(sev, "high") || !strcmp(sev, "critical"));
        }
        fw_ruleset_describe(rs, devnull);
        for (size_t i = 0; i < nfiles; i++)
            if (ends_with(files[i].name, ".list"))
                check_list(rs, files[i].name, files[i].data, files[i].len);
        fw_ruleset *r2 = fw_ruleset_ref(rs);
        fw_ruleset_unref(rs);
        fw_ruleset_unref(r2);
    } else {
        FZ_CHECK(rc == -1);
        size_t elen = strnlen(err, sizeof err);
        FZ_CHECKF(elen > 0 && elen < sizeof err, "error text of %zu bytes", elen);

        /* A small buffer: a terminated prefix of the full message. */
        char small[48];
        size_t cap = 1 + (size ? data[size - 1] % 40 : 0);
        memset(small, 'Z', sizeof small);
        fw_ruleset *none = NULL;
        FZ_CHECK(fw_ruleset_load_files(files, nfiles, 42, &none, small, cap) == -1);
        FZ_CHECK(none == NULL);
        size_t slen = strnlen(small, cap);
        FZ_CHECKF(slen < cap, "error not terminated within %zu bytes", cap);
        FZ_CHECK(small[cap] == 'Z');
        FZ_CHECKF(strncmp(small, err, slen) == 0, "\"%s\" is not a prefix of \"%s\"",
                  small, err);
        /* No buffer at all: nothing written. */
        char zero = 'Z';
        FZ_CHECK(fw_ruleset_load_files(files, nfiles, 42, &none, &zero, 0) == -1);
        FZ_CHECK(zero == 'Z');
    }
    for (size_t i = 0; i < nfiles; i++) {
        free(names[i]);
        free(bodies[i]);
    }
    return 0;
}

/* bench/list_expiry.c — a big watchlist: load time, look-up speed and memory,
 * plain entries against entries that expire (issue 11.5: "a list of 10M
 * entries with expiries loads and matches at the speed of today's plain
 * sets").
 *
 *   list_expiry N MODE [LOOKUPS]
 *
 * MODE plain: N lines "VALUE"; MODE until: N lines "VALUE<TAB>UNTIL<TAB>
 * REASON" (epoch ms, a short reason).  The text is built in memory, loaded
 * through the rule loader (fw_ruleset_load_files: exactly what `rules
 * check`, replay and a daemon without Redis do), then LOOKUPS look-ups
 * (default N) alternate a value on the list and one that is not, through
 * the public API.  Built against the library of another commit (the
 * plain-set baseline, whose API has no event time) with -DFW_BENCH_BASELINE.
 *   list_expiry text N plain|until        the same list text on stdout
 *   list_expiry redis URL NAME            a daemon's full read of list NAME
 *                                         (fw_rstore_fetch_update, then the
 *                                         set built), wall seconds and RSS
 *
 * Prints one line of figures, times in CPU seconds of this (single-threaded)
 * process, so that a busy shared machine disturbs them less than wall time;
 * VmHWM is the peak RSS.  Timing is
 * for bench/README.md, never for a test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fraudwatch/ruleset.h"
#ifdef FW_HAVE_REDIS
#include "fraudwatch/clock.h"
#include "fraudwatch/rulestore.h"
#endif

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);   /* CPU time: the machine is shared */
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0)
            v = strtol(line + kl, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static char *list_text(long n, int until, size_t *lenp)
{
    size_t cap = (size_t)n * (until ? 48 : 14) + 64, len = 0;
    char *text = malloc(cap);
    for (long i = 0; i < n; i++) {
        /* 11-digit phone numbers, spread; UNTILs spread over a year */
        long long v = 13000000000LL + (long long)i * 7;
        if (until)
            len += (size_t)sprintf(text + len, "%lld\t%lld\treported\n", v,
                                   1800000000000LL + (long long)(i % 31536000) * 1000);
        else
            len += (size_t)sprintf(text + len, "%lld\n", v);
    }
    *lenp = len;
    return text;
}

#ifdef FW_HAVE_REDIS
static int redis_read(const char *url, const char *name)
{
    fw_rstore *r;
    char err[4096];
    if (fw_rstore_connect(url, 60000, &r, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    long rss0 = status_kib("VmRSS:");
    int64_t t0 = fw_mono_ms();
    fw_rstore_update u = { 0 };
    if (fw_rstore_fetch_update(r, NULL, &u, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int64_t t1 = fw_mono_ms();
    fw_ruleset *rs;
    if (fw_ruleset_load_parts(u.files, u.nfiles, u.lists, u.nlists, NULL, u.version, &rs,
                              err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int64_t t2 = fw_mono_ms();
    size_t count = 0;
    fw_ruleset_list_info(rs, name, NULL, &count);
    printf("redis full read of %s: %zu entries, fetch %.2f s, build %.2f s (wall), "
           "set_rss_mib=%ld\n", name, count, (double)(t1 - t0) / 1000.0,
           (double)(t2 - t1) / 1000.0, (status_kib("VmRSS:") - rss0) / 1024);
    fw_rstore_update_free(&u);
    fw_ruleset_unref(rs);
    fw_rstore_free(r);
    return 0;
}
#endif

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "text") == 0) {
        size_t len;
        char *t = list_text(atol(argv[2]), strcmp(argv[3], "until") == 0, &len);
        fwrite(t, 1, len, stdout);
        free(t);
        return 0;
    }
#ifdef FW_HAVE_REDIS
    if (argc == 4 && strcmp(argv[1], "redis") == 0)
        return redis_read(argv[2], argv[3]);
#endif
    if (argc < 3) {
        fprintf(stderr, "usage: list_expiry N plain|until [LOOKUPS]\n");
        return 2;
    }
    long n = atol(argv[1]);
    int until = strcmp(argv[2], "until") == 0;
    long lookups = argc > 3 ? atol(argv[3]) : n;
    size_t len;
    char *text = list_text(n, until, &len);
    const char *rules = "[{\"id\":\"R1\",\"event\":\"call\",\"where\":"
                        "[{\"field\":\"caller\",\"in_list\":\"big\"}]}]";
    fw_rulefile f[2] = { { "big.list", text, len }, { "r.json", rules, strlen(rules) } };
    long rss0 = status_kib("VmRSS:");
    double t0 = now_s();
    fw_ruleset *rs;
    char err[4096];
    if (fw_ruleset_load_files(f, 2, 1, &rs, err, sizeof err) != 0) {
        fprintf(stderr, "load: %s\n", err);
        return 1;
    }
    double t1 = now_s();
    free(text);   /* mmap'd: back to the system, so RSS is the set's */
    long rss1 = status_kib("VmRSS:");
    char val[32];
    long hits = 0;
    volatile size_t sink = 0;   /* the loop without the look-up, to subtract */
    double tb = now_s();
    for (long i = 0; i < lookups; i++) {
        long k = (i * 2654435761L) % n;
        long long v = 13000000000LL + (long long)k * 7 + (i & 1);
        sink += (size_t)snprintf(val, sizeof val, "%lld", v);
    }
    double t2 = now_s();
    for (long i = 0; i < lookups; i++) {
        long k = (i * 2654435761L) % n;   /* scattered, like real traffic */
        long long v = 13000000000LL + (long long)k * 7 + (i & 1);   /* odd: absent */
        snprintf(val, sizeof val, "%lld", v);
#ifdef FW_BENCH_BASELINE
        hits += fw_ruleset_list_has(rs, "big", val);
#else
        hits += fw_ruleset_list_has_at(rs, "big", val, 1700000000000LL);
#endif
    }
    double t3 = now_s();
    printf("%s n=%ld load_s=%.2f lookups=%ld hits=%ld lookup_ns=%.0f "
           "set_rss_mib=%ld peak_rss_mib=%ld (text %.0f MiB)\n",
           argv[2], n, t1 - t0, lookups, hits,
           ((t3 - t2) - (t2 - tb)) * 1e9 / (double)lookups, (rss1 - rss0 + (long)(len >> 10)) / 1024,
           status_kib("VmHWM:") / 1024, (double)len / 1048576.0);
    fw_ruleset_unref(rs);
    (void)sink;   /* read once, so that no compiler calls it unused */
    return hits == lookups / 2 ? 0 : 1;
}

/* cli_status.c — the CLI's table for `fraudwatch rules status`: the active
 * set, the watchlists, and every live daemon with its state.
 *
 * Presentation, not data: rstore_status.c reads fw_rstore_status from
 * Redis, and this file only turns it into text, so the daemon links no
 * printing and the layout can change without touching Redis code (it used
 * to sit at the end of rulestore.c).  It is in the library rather than in
 * main.c because the rule store's tests check the table too.  The layout is
 * what operators and their scripts read: change it on purpose only. */
#include <stdio.h>
#include <time.h>

#include "fraudwatch/rulestore.h"

static void fmt_time(int64_t ms, int64_t now_ms, char *out, size_t n)
{
    if (ms <= 0) {
        snprintf(out, n, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char iso[32];
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int64_t ago = (now_ms - ms) / 1000;
    if (ago < 0)
        ago = 0;
    if (ago < 120)
        snprintf(out, n, "%s (%llds ago)", iso, (long long)ago);
    else if (ago < 7200)
        snprintf(out, n, "%s (%lldm ago)", iso, (long long)ago / 60);
    else if (ago < 172800)
        snprintf(out, n, "%s (%lldh ago)", iso, (long long)ago / 3600);
    else
        snprintf(out, n, "%s (%lldd ago)", iso, (long long)ago / 86400);
}

void fw_rstore_status_print(const fw_rstore_status *st, int64_t now_ms, FILE *out)
{
    if (st->version == 0 && st->nfiles == 0)
        fprintf(out, "active rule set: none (nothing pushed yet), generation %llu\n",
                (unsigned long long)st->generation);
    else
        fprintf(out, "active rule set: version %llu, generation %llu, %zu rule "
                     "file%s\n", (unsigned long long)st->version,
                (unsigned long long)st->generation, st->nfiles,
                st->nfiles == 1 ? "" : "s");
    fprintf(out, "\nwatchlists: %zu\n", st->nlists);
    if (st->nlists) {
        fprintf(out, "  %-32s %10s %8s\n", "NAME", "ENTRIES", "VERSION");
        for (size_t i = 0; i < st->nlists; i++)
            fprintf(out, "  %-32s %10llu %8llu\n", st->lists[i].name,
                    (unsigned long long)st->lists[i].size,
                    (unsigned long long)st->lists[i].version);
    }
    fprintf(out, "\ndaemons: %zu live\n", st->ndaemons);
    if (!st->ndaemons)
        return;
    fprintf(out, "  %-20s %-20s %7s %7s %10s %-6s %-12s %-32s %s\n", "INSTANCE",
            "HOST", "PID", "VERSION", "GENERATION", "RESULT", "STATE",
            "LAST RELOAD", "EXPIRES");
    for (size_t i = 0; i < st->ndaemons; i++) {
        const fw_rstore_daemon *d = &st->daemons[i];
        char last[64], state[32], exp[24];
        fmt_time(d->last_reload_ms, now_ms, last, sizeof last);
        if (d->generation == st->generation)
            snprintf(state, sizeof state, "current");
        else if (d->generation < st->generation)
            snprintf(state, sizeof state, "behind");
        else   /* the store was wiped and refilled since the daemon loaded */
            snprintf(state, sizeof state, "ahead");
        if (d->ttl_ms >= 0)
            snprintf(exp, sizeof exp, "in %.1fs", (double)d->ttl_ms / 1000.0);
        else
            snprintf(exp, sizeof exp, "never");
        fprintf(out, "  %-20s %-20s %7d %7llu %10llu %-6s %-12s %-32s %s\n",
                d->instance, d->host, d->pid, (unsigned long long)d->version,
                (unsigned long long)d->generation, d->last_ok ? "ok" : "error",
                state, last, exp);
        if (!d->last_ok && d->last_error[0])
            fprintf(out, "      last error: %s\n", d->last_error);
    }
}

/* reload.h — the daemon's rules source and live reloads (see reload.c). */
#ifndef FRAUDWATCH_RELOAD_H
#define FRAUDWATCH_RELOAD_H

#include "fraudwatch/config.h"
#include "fraudwatch/metrics.h"
#include "fraudwatch/ruleset.h"
#include "fraudwatch/snooze.h"

typedef struct fw_reloader fw_reloader;

/* Loads the first rule set from s->rules_source (synchronously; failure is
 * the daemon's startup error) and starts watching the source. */
int fw_reloader_start(const fw_settings *s, fw_metrics *m, fw_ruleset **initial,
                      fw_reloader **out, char *err, size_t errlen);
/* A newer rule set if one is ready (the caller owns the reference), or NULL.
 * Cheap: one relaxed atomic load when there is none. */
fw_ruleset *fw_reloader_take(fw_reloader *r);
/* New snoozes if a change was read (redis:// only; the caller owns the
 * reference), or NULL.  Cheap: one relaxed atomic load when there is none. */
fw_snoozes *fw_reloader_take_snoozes(fw_reloader *r);
/* Asks for a reload now (SIGHUP). */
void fw_reloader_hup(fw_reloader *r);
void fw_reloader_stop(fw_reloader *r);

#endif

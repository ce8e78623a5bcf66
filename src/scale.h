/* scale.h — `ha.mode = scaleout` (scale.c): several active daemons split
 * the work by key through the repartition topic. */
#ifndef FRAUDWATCH_SCALE_H
#define FRAUDWATCH_SCALE_H

#include <signal.h>
#include <stddef.h>

#include "fraudwatch/config.h"
#include "fraudwatch/metrics.h"
#include "fraudwatch/ruleset.h"
#include "reload.h"

/* Creates the repartition, state and control topics (scale.partitions
 * partitions each) unless they exist.  0, or -1 with err. */
int fw_scale_topics_init(const fw_settings *s, char *err, size_t errlen);

/* Runs the daemon in scale-out mode until *stop (0, every owned partition
 * checkpointed and handed over), or an error (1: could not start; 3:
 * fenced, or a unit or the forwarder failed — err says which).  rs: the
 * first rule set; rl: where new ones and snoozes come from; *hup: SIGHUP. */
int fw_scale_run(const fw_settings *s, fw_metrics *m, fw_reloader *rl, fw_ruleset *rs,
                 volatile sig_atomic_t *stop, volatile sig_atomic_t *hup, char *err,
                 size_t errlen);

#endif

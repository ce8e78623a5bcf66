/* fraudwatch — `fraudwatch run`: the streaming daemon (see src/daemon.c). */
#ifndef FRAUDWATCH_DAEMON_H
#define FRAUDWATCH_DAEMON_H

#include "fraudwatch/config.h"

/* Runs until SIGTERM/SIGINT (a second signal cuts the shutdown short).
 * Returns the process exit status: 0 clean, 1 startup or shutdown failure,
 * 3 a fatal Kafka error. */
int fw_daemon_run(const fw_settings *s);

#endif

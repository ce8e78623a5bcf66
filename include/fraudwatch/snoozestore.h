/* fraudwatch — snoozes in Redis (rstore_snooze.c; keys in docs/redis.md).
 *
 * Every running daemon reads the snoozes from the store it takes its rules
 * from, and picks a change up within a second, the way it picks up a rule
 * push: a notification on fraudwatch:notify ("snooze VERSION") wakes its
 * rules thread, which also reads fraudwatch:snoozes:version once a second
 * (pub/sub can drop a message).  A snooze change never bumps the rules
 * generation: it costs the daemon a read of the snoozes, never a rule set
 * rebuilt, and no window state is touched.
 *
 * Every change is one optimistic transaction (fw_redis_optimistic): the
 * snooze, the version, an entry in the append-only record of changes (who,
 * when, why), and the notification, all or nothing. */
#ifndef FRAUDWATCH_SNOOZESTORE_H
#define FRAUDWATCH_SNOOZESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fraudwatch/rulestore.h"
#include "fraudwatch/snooze.h"

/* Sets the snooze (rule, subject) — a new one, or a new UNTIL / reason for
 * one that exists (the record says which).  s->at is set to the server's
 * time.  FW_RSTORE_REFUSED: the rule is neither "*" nor a rule of the
 * active set (or there is no active set), the rule or subject is not
 * valid (fw_snooze_check_*), or the reason is empty.  *replaced: there was
 * one.  *version: the snoozes' new version. */
int fw_rstore_snooze_add(fw_rstore *r, const fw_snooze *s, bool *replaced,
                         uint64_t *version, char *err, size_t errlen);
/* Removes it; FW_RSTORE_REFUSED when there is no such snooze.  by and
 * reason go into the record (NULL: none). */
int fw_rstore_snooze_remove(fw_rstore *r, const char *rule, const char *subject,
                            const char *by, const char *reason, uint64_t *version,
                            char *err, size_t errlen);
/* GET fraudwatch:snoozes:version (0 when absent). */
int fw_rstore_snooze_version(fw_rstore *r, uint64_t *version, char *err, size_t errlen);
/* Every snooze, with the version they are at (read together). */
int fw_rstore_snooze_read(fw_rstore *r, fw_snoozes **out, uint64_t *version, char *err,
                          size_t errlen);
/* The record of changes, oldest first: the last `last` entries (0: all),
 * each a JSON object {"at","op","rule","subject","until","reason","by"};
 * free with fw_rstore_snooze_log_free. */
int fw_rstore_snooze_log(fw_rstore *r, size_t last, char ***lines, size_t *n, char *err,
                         size_t errlen);
void fw_rstore_snooze_log_free(char **lines, size_t n);

#endif

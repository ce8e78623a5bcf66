/* fraudwatch — the one allocator family, and the out-of-memory policy.
 *
 * Policy.  Memory the stream needs in order to go on — key state, batches,
 * alerts, a rule set being built, the Redis command being assembled — is
 * not optional: when it cannot be had, fraudwatch says so on stderr in one
 * line and aborts.  A daemon then restarts (systemd Restart=on-failure)
 * from its last checkpoint, exactly as after the kernel's OOM killer, which
 * on Linux with overcommit usually comes first anyway; nothing half-applied
 * is ever published, because checkpoints and rule sets are swapped in
 * whole.  Where failing is an ordinary answer — a setting too large, a
 * request, a message that does not fit a buffer — the code returns an
 * error with a message instead and does not use these.  Key state has its
 * own budget (a setting), so reaching it is not running out of memory.
 *
 * fw_x*() never return NULL. */
#ifndef FRAUDWATCH_ALLOC_H
#define FRAUDWATCH_ALLOC_H

#include <stddef.h>

_Noreturn void fw_oom(void);
void *fw_xmalloc(size_t n);
void *fw_xcalloc(size_t n, size_t size);     /* n == 0 allocates one */
void *fw_xrealloc(void *p, size_t n);
char *fw_xstrdup(const char *s);
char *fw_xstrndup(const char *s, size_t n);  /* NUL-terminated copy */

#endif

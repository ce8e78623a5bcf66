/* rstore_notify.c — the subscriber to fraudwatch:notify, the daemon's fast
 * path to a change (a push, a list change) within a second.
 *
 * A file of its own because it is a different kind of connection from the
 * command handle: once SUBSCRIBEd, a hiredis context takes no commands but
 * PING, and is read without blocking (poll on its socket, then the replies
 * already buffered), so the reload thread can wait on it with a deadline.
 * Pub/sub is at-most-once (messages are lost across a disconnect), so a
 * notification only says "look now"; the daemon also checks the generation
 * once a second and re-reads everything after reconnecting.  A half-open
 * TCP connection would leave a subscriber deaf forever: after SUB_PING_MS
 * of silence it PINGs, and no PONG within the timeout ends it. */
#include "rstore_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"

#define SUB_PING_MS 5000      /* a quiet subscriber PINGs this often */

struct fw_rsub {
    redisContext *c;
    int timeout_ms;
    bool dead;
    int64_t last_rx_ms;
    int64_t ping_sent_ms;   /* 0: none outstanding */
    char where[640];
};

int fw_rsub_connect(const char *url, int timeout_ms, fw_rsub **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    fw_rsub *s = fw_xcalloc(1, sizeof *s);
    s->c = fw_redis_open(url, &timeout_ms, s->where, sizeof s->where, err, errlen);
    if (!s->c) {
        free(s);
        return FW_RSTORE_ERR;
    }
    s->timeout_ms = timeout_ms;
    const char *argv[2] = { "SUBSCRIBE", CHANNEL };
    redisReply *rep = fw_redis_ctx_cmd(s->c, timeout_ms, s->where,
                                       "SUBSCRIBE " CHANNEL, 2, argv, err, errlen);
    if (!rep) {
        redisFree(s->c);
        free(s);
        return FW_RSTORE_ERR;
    }
    freeReplyObject(rep);
    s->last_rx_ms = fw_mono_ms();
    *out = s;
    return 0;
}

/* Takes every reply already read: 1 if one was a message. */
static int sub_drain(fw_rsub *s)
{
    int got = 0;
    for (;;) {
        void *v = NULL;
        if (redisGetReplyFromReader(s->c, &v) != REDIS_OK)
            return -1;
        if (!v)
            return got;
        redisReply *rep = v;
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
            rep->element[0]->type == REDIS_REPLY_STRING) {
            const char *kind = rep->element[0]->str;
            if (strcmp(kind, "message") == 0)
                got = 1;
            else if (strcmp(kind, "pong") == 0)
                s->ping_sent_ms = 0;
        }
        freeReplyObject(rep);
    }
}

int fw_rsub_wait(fw_rsub *s, int timeout_ms)
{
    if (!s || s->dead)
        return -1;
    if (timeout_ms < 0)
        timeout_ms = 0;
    int64_t deadline = fw_mono_ms() + timeout_ms;
    for (;;) {
        int got = sub_drain(s);
        if (got != 0) {
            if (got < 0)
                s->dead = true;
            return got;
        }
        int64_t now = fw_mono_ms();
        if (s->ping_sent_ms && now - s->ping_sent_ms > s->timeout_ms) {
            s->dead = true;   /* no PONG: the server or the path is gone */
            return -1;
        }
        if (!s->ping_sent_ms && now - s->last_rx_ms >= SUB_PING_MS) {
            const char *argv[1] = { "PING" };
            int done = 0;
            if (redisAppendCommandArgv(s->c, 1, argv, NULL) != REDIS_OK) {
                s->dead = true;
                return -1;
            }
            while (!done)
                if (redisBufferWrite(s->c, &done) != REDIS_OK) {
                    s->dead = true;
                    return -1;
                }
            s->ping_sent_ms = now;
        }
        int64_t wait = deadline - now;
        if (s->ping_sent_ms) {
            int64_t pd = s->ping_sent_ms + s->timeout_ms + 1 - now;
            if (pd < wait)
                wait = pd;
        } else if (s->last_rx_ms + SUB_PING_MS - now < wait) {
            wait = s->last_rx_ms + SUB_PING_MS - now;
        }
        if (wait < 0)
            wait = 0;
        struct pollfd p = { .fd = s->c->fd, .events = POLLIN };
        int n = poll(&p, 1, (int)wait);
        if (n < 0 && errno != EINTR) {
            s->dead = true;
            return -1;
        }
        if (n > 0) {
            if (redisBufferRead(s->c) != REDIS_OK) {
                s->dead = true;
                return -1;
            }
            s->last_rx_ms = fw_mono_ms();
            continue;
        }
        if (fw_mono_ms() >= deadline)
            return 0;
    }
}

void fw_rsub_free(fw_rsub *s)
{
    if (!s)
        return;
    if (s->c)
        redisFree(s->c);
    free(s);
}

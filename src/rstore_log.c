/* rstore_log.c — the change log of a watchlist: what lets a daemon apply a
 * one-number `lists add` to a ten-million-entry list without reading the
 * list again (issue 10.4).
 *
 * fraudwatch:list:NAME:log is a Redis list.  Every `lists add` / `lists
 * remove` appends one element in the same MULTI/EXEC that changes the set
 * and INCRs the list's version, so an element and the version it made are
 * never seen apart:
 *
 *     "<version> +\n<value>\n<value>..."     (or "-" for a removal)
 *     "<version> *\n<value>\t<until>[\t<reason>]\n..."   (an add with columns)
 *
 * "*" (issue 11.5) is an add of entries that expire or carry a reason, one
 * .list line each (VALUE<TAB>UNTIL-in-ms-or-'-'[<TAB>REASON]); "+" values
 * never expire.  A fraudwatch older than "*" does not parse it, sees a
 * gap, and reads the list whole: mixing versions stays safe.
 *
 * Values are those the change applied, as given (cleaned: no line breaks),
 * so replaying the elements after version v, in order, onto the entries a
 * reader had at v gives the entries at the newest version, whether or not
 * each value was already there.  The log keeps the last LIST_LOG_KEEP
 * changes (LTRIM in the same transaction).  A change bigger than
 * LIST_LOG_ENTRY_MAX bytes is not logged: the log is deleted instead, and
 * so is it whenever the list is replaced (push, `lists load`) or removed.
 *
 * A reader trusts the log only when it holds exactly the versions it needs,
 * v+1 .. current, each once and in order (fw_rlog_read checks every one).
 * A gap — trimmed, deleted by a replacement, or a change made by an older
 * fraudwatch that writes no log — makes it read the list whole instead, so
 * the log can only make a read cheaper, never wrong. */
#include "rstore_internal.h"

#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/buf.h"

void fw_rlog_append(fw_rcmds *tx, const char *name, uint64_t version, bool add,
                    char *const *vals, size_t n)
{
    fw_rlog_append_kind(tx, name, version, add ? '+' : '-', vals, n);
}

void fw_rlog_append_kind(fw_rcmds *tx, const char *name, uint64_t version, char kind,
                         char *const *vals, size_t n)
{
    const char *lk = fw_rcmds_fmt(tx, K_LIST "%s:log", name);
    size_t bytes = 24;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(vals[i]) + 1;
    if (bytes > LIST_LOG_ENTRY_MAX) {
        fw_rcmds_add(tx, "DEL", lk, (const char *)NULL);
        return;
    }
    fw_buf b = { 0 };
    fw_buf_printf(&b, "%llu %c", (unsigned long long)version, kind);
    for (size_t i = 0; i < n; i++) {
        fw_buf_putc(&b, '\n');
        fw_buf_puts(&b, vals[i]);
    }
    const char *entry = fw_rcmds_fmt(tx, "%.*s", (int)b.len, b.p);
    fw_buf_free(&b);
    fw_rcmds_add(tx, "RPUSH", lk, entry, (const char *)NULL);
    fw_rcmds_add(tx, "LTRIM", lk, fw_rcmds_fmt(tx, "-%d", LIST_LOG_KEEP), "-1",
                 (const char *)NULL);
}

void fw_rlog_drop(fw_rcmds *tx, const char *name)
{
    fw_rcmds_add(tx, "DEL", fw_rcmds_fmt(tx, K_LIST "%s:log", name), (const char *)NULL);
}

void fw_rlog_free(fw_rlog *log)
{
    free(log->ops);
    if (log->rep)
        freeReplyObject(log->rep);
    memset(log, 0, sizeof *log);
}

/* "<version> <+|->\n..." → op; false when the element is not one. */
static bool parse_op(const redisReply *e, fw_rlog_op *op)
{
    if (e->type != REDIS_REPLY_STRING || !e->str)
        return false;
    const char *p = e->str, *end = e->str + e->len;
    uint64_t v = 0;
    const char *d = p;
    while (p < end && *p >= '0' && *p <= '9' && p - d < 20)
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (p == d || end - p < 2 || p[0] != ' ' ||
        (p[1] != '+' && p[1] != '-' && p[1] != '*'))
        return false;
    op->version = v;
    op->kind = p[1];
    op->add = p[1] != '-';
    p += 2;
    if (p < end && *p != '\n')
        return false;
    op->values = p < end ? p + 1 : end;
    op->len = (size_t)(end - op->values);
    return true;
}

/* The elements of an LRANGE of the versions (from, to]: exactly those, in
 * order? */
static bool covers(const redisReply *range, uint64_t from, uint64_t to, fw_rlog *log)
{
    if (range->type != REDIS_REPLY_ARRAY || range->elements != to - from)
        return false;
    log->ops = fw_xcalloc(range->elements + 1, sizeof *log->ops);
    for (size_t i = 0; i < range->elements; i++) {
        fw_rlog_op *op = &log->ops[i];
        if (!parse_op(range->element[i], op) || op->version != from + 1 + i) {
            free(log->ops);
            log->ops = NULL;
            return false;
        }
        for (size_t j = 0; j < op->len; j++)
            log->nvalues += op->values[j] == '\n';
        log->nvalues += op->len > 0;
    }
    log->n = range->elements;
    log->to = to;
    return true;
}

int fw_rlog_read(fw_rstore *r, const char *name, uint64_t from, uint64_t to,
                 fw_rlog *log, char *err, size_t errlen)
{
    memset(log, 0, sizeof *log);
    if (r->dead)
        return fw_redis_dead(r, err, errlen);
    char vk[160], lk[160];
    version_key(vk, sizeof vk, name);
    log_key(lk, sizeof lk, name);
    /* The list may move between the caller's read of its version and this
     * one: a few rounds follow it; a list that changes faster than that is
     * read whole. */
    for (int round = 0; round < 4; round++) {
        if (to < from || to - from > LIST_LOG_KEEP)
            return 1;
        if (to == from) {
            log->to = to;
            return 0;
        }
        fw_rcmds cmds = { 0 };
        fw_rcmds_add(&cmds, "GET", vk, (const char *)NULL);
        fw_rcmds_add(&cmds, "LRANGE", lk,
                     fw_rcmds_fmt(&cmds, "-%llu", (unsigned long long)(to - from)), "-1",
                     (const char *)NULL);
        redisReply *exec;
        int rc = fw_redis_exec(r, &cmds, &exec, "reading a watchlist's change log",
                               err, errlen);
        fw_rcmds_free(&cmds);
        if (rc != 0)
            return rc < 0 ? rc : FW_RSTORE_ERR;
        uint64_t now;
        if ((rc = fw_redis_u64(r, exec->element[0], vk, &now, err, errlen)) != 0) {
            freeReplyObject(exec);
            return rc;
        }
        if (now != to) {   /* moved meanwhile: again, up to the new version */
            freeReplyObject(exec);
            to = now;
            continue;
        }
        if (!covers(exec->element[1], from, to, log)) {
            freeReplyObject(exec);
            return 1;
        }
        log->rep = exec;
        return 0;
    }
    return 1;
}

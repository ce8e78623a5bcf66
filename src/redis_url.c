/* redis_url.c — parsing redis:// URLs (src/redis_url.h).
 *
 * Out of redis_conn.c so that the daemon's configuration check can use the
 * very parser the connection uses, without hiredis: `run --check-config`
 * refuses rules.source = redis://u:pw@host:99999 instead of the daemon
 * failing when it connects.
 *
 * Messages never quote the URL or a part of it.  A URL that does not parse
 * is exactly the one whose parts we cannot trust: "redis://u:PASSWORD"
 * (no "@host") reads as host "u" and port "PASSWORD", "redis://PASSWORD@h"
 * as a user.  The messages say which part is wrong instead, and the
 * operator has the URL in front of them. */
#include "redis_url.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* %-decodes s[0..n) into out; false on a bad escape, a NUL or no room. */
static bool pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= outlen)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

__attribute__((format(printf, 3, 4)))
static int refuse(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -1;
}

int fw_redis_url_parse(const char *url, fw_redis_url *u, char *why, size_t whylen)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (!url || !*url)
        return refuse(why, whylen, "no Redis URL given (expected %s)", FW_REDIS_URL_FORM);
    if (strncasecmp(url, "rediss://", 9) == 0)
        return refuse(why, whylen, "rediss:// (TLS) is not available: this build uses "
                      "hiredis 0.14, which has no TLS; use redis:// on a trusted network "
                      "or through a local TLS tunnel (stunnel, spiped) to 127.0.0.1");
    if (strncasecmp(url, "redis://", 8) == 0 && strncmp(url, "redis://", 8) != 0)
        return refuse(why, whylen, "Redis URL: the scheme must be written in lower "
                      "case, redis:// (expected %s)", FW_REDIS_URL_FORM);
    if (strncmp(url, "redis://", 8) != 0)
        return refuse(why, whylen, "not a Redis URL: it must start with redis:// "
                      "(expected %s)", FW_REDIS_URL_FORM);
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *ue = colon ? colon : at;
        if (!pct_decode(p, (size_t)(ue - p), u->user, sizeof u->user) ||
            (colon && !pct_decode(colon + 1, (size_t)(at - colon - 1), u->pass,
                                  sizeof u->pass))) {
            fw_redis_url_wipe(u);
            return refuse(why, whylen, "Redis URL: the user or password is badly "
                          "%%-encoded or too long");
        }
        u->has_user = u->user[0] != '\0';
        u->has_pass = colon != NULL;
        if (u->has_pass && !u->pass[0]) {
            fw_redis_url_wipe(u);
            return refuse(why, whylen, "Redis URL: the password is empty (leave out "
                          "\"user:@\" when the server needs none)");
        }
        p = at + 1;
    }
    int rc = 0;
    const char *hs = p, *he;
    if (*p == '[') {
        he = strchr(p, ']');
        if (!he) {
            rc = refuse(why, whylen, "Redis URL: \"[\" without \"]\" in the host "
                        "(expected %s)", FW_REDIS_URL_FORM);
            goto out;
        }
        hs = p + 1;
        p = he + 1;
    } else {
        he = p + strcspn(p, ":/?#");
        p = he;
    }
    if (he == hs || (size_t)(he - hs) >= sizeof u->host) {
        rc = refuse(why, whylen, "Redis URL: no host%s (expected %s)",
                    he == hs ? "" : " (the host name is too long)", FW_REDIS_URL_FORM);
        goto out;
    }
    memcpy(u->host, hs, (size_t)(he - hs));
    if (*p == ':') {
        p++;
        size_t plen = strcspn(p, "/?#");
        long port = 0;
        size_t i = 0;
        while (i < plen && isdigit((unsigned char)p[i]) && port <= 65535)
            port = port * 10 + (p[i++] - '0');
        if (plen == 0 || i != plen || port < 1 || port > 65535) {
            rc = refuse(why, whylen, "Redis URL: the port is not a number 1..65535 "
                        "(expected %s)", FW_REDIS_URL_FORM);
            goto out;
        }
        u->port = (int)port;
        p += plen;
    }
    if (*p == '/') {
        p++;
        const char *ds = p;
        long db = 0;
        while (isdigit((unsigned char)*p) && db <= 100000)
            db = db * 10 + (*p++ - '0');
        if ((*p && *p != '?' && *p != '#') || (p == ds && *ds) || db > 100000) {
            rc = refuse(why, whylen, "Redis URL: the database after the \"/\" is not a "
                        "number 0..100000 (expected %s)", FW_REDIS_URL_FORM);
            goto out;
        }
        u->db = db;
    }
    if (*p)
        rc = refuse(why, whylen, "Redis URL: unexpected text after the host, port or "
                    "database (no \"?\" options or \"#\" fragments are taken; expected %s)",
                    FW_REDIS_URL_FORM);
out:
    if (rc)
        fw_redis_url_wipe(u);
    return rc;
}

void fw_redis_url_format(const fw_redis_url *u, char *out, size_t outlen)
{
    bool v6 = strchr(u->host, ':') != NULL;
    char db[32] = "";
    if (u->db)
        snprintf(db, sizeof db, "/%ld", u->db);
    snprintf(out, outlen, "redis://%s%s%s%s%s%s:%d%s", u->user,
             u->has_pass ? ":" FW_SECRET_URL_MASK : "",
             u->has_user || u->has_pass ? "@" : "", v6 ? "[" : "", u->host, v6 ? "]" : "",
             u->port, db);
}

void fw_redis_url_wipe(fw_redis_url *u)
{
    explicit_bzero(u, sizeof *u);
}

/* redis_url.h — the one parser of redis:// URLs (src/redis_url.c).
 *
 * Used by redis_conn.c to connect and by config.c to check rules.source
 * when it is set (so `run --check-config` refuses a bad URL with the same
 * words as the commands).  No hiredis here: a build without it still
 * checks its configuration. */
#ifndef FRAUDWATCH_REDIS_URL_H
#define FRAUDWATCH_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "fraudwatch/secret.h"

#define FW_REDIS_URL_FORM "redis://[[user][:password]@]host[:port][/db]"

typedef struct fw_redis_url {
    char host[256];
    int port;                   /* 6379 when not given */
    char user[256];             /* %-decoded; "" when none */
    char pass[FW_SECRET_MAX];   /* %-decoded; has_pass says whether given */
    bool has_user, has_pass;
    long db;                    /* 0 when not given */
} fw_redis_url;

/* Parses redis://[[user][:password]@]host[:port][/db]: host a name, an IPv4
 * address or [IPv6]; user and password may be %-encoded; the userinfo ends
 * at the last '@'.  A user without a password is accepted (the password
 * may come from a file: the caller decides).  0, or -1 with why set to a
 * whole sentence ("Redis URL: the port is not a number 1..65535 (expected
 * ...)") that quotes no part of the URL: a URL that does not parse cannot
 * be told apart from a password typed in the wrong place.  rediss:// and
 * a scheme in capitals get messages of their own.  Wipe u after use. */
int fw_redis_url_parse(const char *url, fw_redis_url *u, char *why, size_t whylen);

/* The URL as messages show it: redis://[user[:****]@]host:port[/db], the
 * password (if the URL has one) as FW_SECRET_URL_MASK. */
void fw_redis_url_format(const fw_redis_url *u, char *out, size_t outlen);

/* Zeroes u, the password included (explicit_bzero). */
void fw_redis_url_wipe(fw_redis_url *u);

#endif

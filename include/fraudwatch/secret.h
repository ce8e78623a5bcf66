/* fraudwatch — secrets: which settings hold one, how a URL is shown without
 * its password, and how a secret is read from a file (src/secret.c).
 *
 * The rule every output path follows (docs/configuration.md, "Secrets";
 * docs/redis.md, "AUTH"): a password, a key or a token is never printed —
 * not by --check-config, not in an error message, not in a warning.
 * Settings whose names mean a secret are shown as FW_SECRET_MASK; a URL is
 * shown through fw_secret_url_shown(), which replaces the password of its
 * userinfo with FW_SECRET_URL_MASK; a URL that cannot be parsed is not
 * quoted at all by the parsers.  Secrets given as files are read by
 * fw_secret_read_file(), whose messages name the file, never its content.
 *
 * No state; every function may be called from any thread. */
#ifndef FRAUDWATCH_SECRET_H
#define FRAUDWATCH_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define FW_SECRET_MASK "********"   /* a secret setting's whole value */
#define FW_SECRET_URL_MASK "****"   /* the password in a URL's userinfo */
#define FW_SECRET_MAX 4096          /* the longest secret read from a file, NUL included */
#define FW_SECRET_FILE_PREFIX "@file:"  /* "KEY = @file:PATH": the value is PATH's first line */

/* True when a setting or librdkafka property of this name holds a secret:
 * its name contains password, passwd, passphrase, secret, token,
 * credential, jaas, ssl.key, ssl_key, sasl.oauthbearer.config or
 * sasl.oauthbearer.extensions (any case).  A name ending in "_file" names
 * a file, not a secret (rules.redis_password_file). */
bool fw_secret_name(const char *name);

/* How fw_secret_url_shown() treats the userinfo. */
enum fw_url_show {
    /* user:PASSWORD@ → user:****@; a user without a password is shown.
     * For URLs that were parsed and accepted. */
    FW_URL_SHOW_USER,
    /* anything@ → ****@.  For echoing what was typed, before or without
     * parsing it: "redis://PASSWORD@host" may be a password that lost its
     * colon. */
    FW_URL_HIDE_USERINFO,
};

/* The one way a URL (or a value that may be one) is shown to a human:
 * `text` with the password of its userinfo — between the first ':' after
 * "scheme://" and the last '@' — replaced by FW_SECRET_URL_MASK.  Without
 * an '@', a "scheme://host:PORT" whose PORT is not a number may be
 * "user:password" without its "@host": everything after that ':' is
 * masked.  Text without "://" and '@' is returned as it is.  Always
 * NUL-terminates out (outlen > 0), cutting the result short if needed. */
void fw_secret_url_shown(const char *text, enum fw_url_show how, char *out, size_t outlen);

/* Where fw_secret_url_shown() would mask: true with [*off, *off + *len)
 * the password's bytes in text (the userinfo's, or what follows a ':' that
 * is not a port), false when text holds none.  For overwriting a password
 * in place (the command line, see main.c). */
bool fw_secret_url_password(const char *text, size_t *off, size_t *len);

/* Reads a secret from the file `path`: its first line, without the line
 * end ("\n" or "\r\n").  Refused, with a message that names the file and
 * never its content: a file that cannot be opened, that is not a regular
 * file (a FIFO is not waited on), that every user may read or write
 * (mode & 006: "chmod o-rwx"; group access is allowed, so a file owned by
 * root with the daemon's group and mode 0640 works), that is larger than
 * outlen - 1 bytes, that holds a NUL byte, an empty first line, or more
 * than one line (blank lines after the first are allowed).  0 with the
 * secret in out, or -1 with why set; either way no copy of the file's
 * content is left anywhere but in out. */
int fw_secret_read_file(const char *path, char *out, size_t outlen, char *why, size_t whylen);

#endif

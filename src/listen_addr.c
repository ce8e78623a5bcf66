/* listen_addr.c — HOST:PORT for the endpoints fraudwatch serves.
 *
 * Owns the syntax and the loopback rule in one place, so that the config
 * check (config.c, at --set / --check-config time) and the server that
 * binds (metrics.c) can never disagree about what is accepted.  Any other
 * address only with fw_listen_parse_any(), for an endpoint that has TLS and
 * a password (metrics.tls_* and metrics.auth_*, config.c decides). */
#include "listen_addr.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse(const char *text, struct sockaddr_storage *ss, bool any, char *why,
                 size_t whylen)
{
    char host[64];
    const char *port;
    memset(ss, 0, sizeof *ss);
    if (!text || !*text) {
        snprintf(why, whylen, "empty (want e.g. 127.0.0.1:9464)");
        return -1;
    }
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end || end[1] != ':' || (size_t)(end - text - 1) >= sizeof host) {
            snprintf(why, whylen, "\"%s\": want [IPv6]:PORT, e.g. [::1]:9464", text);
            return -1;
        }
        memcpy(host, text + 1, (size_t)(end - text - 1));
        host[end - text - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host ||
            memchr(text, ':', (size_t)(colon - text))) {
            snprintf(why, whylen, "\"%s\": want HOST:PORT, e.g. 127.0.0.1:9464 (IPv6 in "
                     "brackets: [::1]:9464)", text);
            return -1;
        }
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port = colon + 1;
    }
    unsigned long p = 0;
    size_t digits = strspn(port, "0123456789");
    if (digits == 0 || digits > 5 || port[digits] != '\0' ||
        (p = strtoul(port, NULL, 10)) > 65535) {
        snprintf(why, whylen, "\"%s\": the port must be 0..65535", text);
        return -1;
    }
    if (strcasecmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");

    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        if (any || (ntohl(v4->sin_addr.s_addr) >> 24) == 127) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons((uint16_t)p);
            return 0;
        }
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        if (any || IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons((uint16_t)p);
            return 0;
        }
    } else if (*host) {         /* ":9464" (every interface) is refused below */
        snprintf(why, whylen, "\"%s\": \"%s\" is not an IP address or localhost", text, host);
        return -1;
    }
    if (any)
        snprintf(why, whylen, "\"%s\": want an IP address, e.g. 0.0.0.0:9464 or [::]:9464",
                 text);
    else
        snprintf(why, whylen, "\"%s\" refused: not a loopback address.  The endpoint has no "
                 "authentication, so it listens on 127.0.0.0/8 or [::1] only; put a proxy or "
                 "a sidecar in front of it to expose it", text);
    return -1;
}

int fw_listen_parse(const char *text, struct sockaddr_storage *ss, char *why,
                    size_t whylen)
{
    return parse(text, ss, false, why, whylen);
}

int fw_listen_parse_any(const char *text, struct sockaddr_storage *ss, char *why,
                        size_t whylen)
{
    return parse(text, ss, true, why, whylen);
}

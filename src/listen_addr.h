/* listen_addr.h — the one parser of listen addresses (listen_addr.c). */
#ifndef FRAUDWATCH_LISTEN_ADDR_H
#define FRAUDWATCH_LISTEN_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* "127.0.0.1:9464", "[::1]:9464", "localhost:9464" → *ss (port 0: any).
 * Only loopback addresses (127.0.0.0/8, ::1, localhost) are taken: the
 * endpoints that use this have no authentication.  -1 with why filled
 * ("\"0.0.0.0:9464\" refused: not a loopback address. ..."). */
int fw_listen_parse(const char *text, struct sockaddr_storage *ss, char *why,
                    size_t whylen);

/* The same syntax, any IP address (0.0.0.0, [::], a host's own): for an
 * endpoint with TLS and basic authentication only (config.c checks). */
int fw_listen_parse_any(const char *text, struct sockaddr_storage *ss, char *why,
                        size_t whylen);

#endif

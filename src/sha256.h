/* sha256.h — SHA-256 (FIPS 180-4), for alert ids. */
#ifndef FRAUDWATCH_SHA256_H
#define FRAUDWATCH_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct fw_sha256 {
    uint32_t h[8];
    uint64_t bytes;
    unsigned char buf[64];
    size_t used;
} fw_sha256;

void fw_sha256_init(fw_sha256 *s);
void fw_sha256_update(fw_sha256 *s, const void *data, size_t len);
void fw_sha256_final(fw_sha256 *s, unsigned char out[32]);

#endif

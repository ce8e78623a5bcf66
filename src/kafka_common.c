/* kafka_common.c — what the consumer and the producer share: librdkafka's
 * log routed into ours, and configuration with errors that name the key. */
#include <stdio.h>

#include "fraudwatch/log.h"
#include "fraudwatch/secret.h"
#include "kafka.h"

void fw_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* syslog levels: 0..3 error, 4 warning, 5..6 notice/info, 7 debug */
    fw_log(level <= 3 ? FW_LOG_ERROR : level <= 4 ? FW_LOG_WARN
                                     : level <= 6 ? FW_LOG_INFO : FW_LOG_DEBUG,
           "librdkafka", buf, "facility=%s", fac);
}

int fw_kafka_set(rd_kafka_conf_t *c, const char *client, const char *key,
                 const char *value, char *err, size_t errlen)
{
    char e[512];
    if (rd_kafka_conf_set(c, key, value, e, sizeof e) != RD_KAFKA_CONF_OK) {
        /* A secret's value never goes into a message (nor, since it may
         * quote it, librdkafka's own error text). */
        if (fw_secret_name(key))
            snprintf(err, errlen, "%s setting %s: refused (the value is a secret and is "
                                  "not shown)", client, key);
        else
            snprintf(err, errlen, "%s setting %s=%s: %s", client, key, value, e);
        return -1;
    }
    return 0;
}

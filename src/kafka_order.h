/* kafka_order.h — interleaving a consumer's partitions by message time
 * (internal; see kafka_order.c). */
#ifndef FRAUDWATCH_KAFKA_ORDER_H
#define FRAUDWATCH_KAFKA_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fw_order fw_order;

/* Does partition `src` hold messages the consumer has not handed over yet
 * (its high watermark is past the last offset pushed)?  Asked only about
 * partitions whose buffer is empty. */
typedef bool (*fw_order_behind_fn)(void *ctx, uint32_t src);

/* `wait_ms`: how long the head of the stream may wait for a partition that
 * is behind but has nothing buffered; `max_buffered`: messages held before
 * the oldest is released regardless.  NULL when out of memory. */
fw_order *fw_order_new(int64_t wait_ms, size_t max_buffered);
/* Frees the buffers; messages still held are passed to `destroy`. */
void fw_order_free(fw_order *o, void (*destroy)(void *msg));

/* Partition `src` (an index of kafka_in.c's table) is assigned: the stream
 * may wait for it from `now_ms` on. */
void fw_order_assign(fw_order *o, uint32_t src, int64_t now_ms);
/* Partition `src` is taken away: its buffered messages go to `destroy`
 * (they were not processed; the next owner reads them again). */
void fw_order_revoke(fw_order *o, uint32_t src, void (*destroy)(void *msg));

/* A message of partition `src`, timestamp `ts_ms` (-1: none), in the order
 * the consumer delivered it.  -1 when out of memory (not taken). */
int fw_order_push(fw_order *o, uint32_t src, int64_t ts_ms, void *msg);
/* The same with two values of the caller's kept with the message, read
 * back in a behind callback by fw_order_head_aux (0 or 1). */
int fw_order_push_aux(fw_order *o, uint32_t src, int64_t ts_ms, int64_t a0, int64_t a1,
                      void *msg);

/* The next message to process, or NULL when the stream must wait for a
 * partition that is behind (for at most wait_ms since it ran dry) or holds
 * nothing.  Messages of one partition come out in the order pushed; across
 * partitions, oldest timestamp first (ties: the order pushed). */
void *fw_order_pop(fw_order *o, int64_t now_ms, fw_order_behind_fn behind,
                   void *ctx, uint32_t *src);

/* A message of partition `src` just delivered, with nothing buffered and no
 * other partition assigned: true when fw_order_push() then fw_order_pop()
 * would hand it straight back, which this records as done (the lane ran dry
 * at now_ms) — the caller takes the message itself, with no copy in and out
 * of the buffer.  False: push it as usual.  A single partition, the common
 * case, never needs the buffer. */
bool fw_order_pass(fw_order *o, uint32_t src, int64_t now_ms);

/* Messages held now. */
size_t fw_order_buffered(const fw_order *o);
/* Inside a behind callback: the timestamp of the message the stream would
 * take next (repart_in.c: is the partition known to be past it?). */
int64_t fw_order_head_ts(const fw_order *o);
int64_t fw_order_head_aux(const fw_order *o, int i);

#endif

/* snapshot.c — the thread that puts a checkpoint file on disk.
 *
 * The writer (fw_ckpt_writer) is one thread that turns a snapshot into a
 * file: it writes `path.tmp` and fsyncs it (WRITTEN), then — only when its
 * owner says so with fw_ckpt_writer_publish(), which the daemon does once
 * every alert produced before the cut is acknowledged — renames it over
 * `path` and fsyncs the directory (DONE).  Publishing is separate from
 * writing because the file that is in place is the one a restart after
 * kill -9 resumes from: it must never be one whose alerts could still be
 * lost.  The state is an atomic the owner polls without a lock; the mutex
 * and condition variable are used only to hand work over and to wait.
 * The thread runs at nice 10: it is background work.
 * FW_TEST_CHECKPOINT_STALL_MS (tests only) makes the thread sleep that long
 * after writing the file and before its fsync, so a test can kill -9 the
 * daemon while a checkpoint is being written.  (The encoding of what goes
 * into the file is codec.c's.) */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "snapshot.h"
#include "ckpt_store.h"

#include "fraudwatch/clock.h"

/* ---- the writer thread -------------------------------------------------- */

struct fw_ckpt_writer {
    char *path, *tmp, *dir;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int state;            /* enum fw_ckpt_state */
    bool publish, quit;          /* under mu */
    fw_ckpt_fill_fn fill;
    void *ctx;
    int64_t stall_ms;
    int64_t write_ns, publish_ns;
    char err[1024];
    /* Another store (ckpt_store.h: the state topic) instead of the
     * directory; NULL: path.tmp and rename. */
    const fw_ckpt_store_ops *ops;
    void *ops_self;
};

static void set_state(fw_ckpt_writer *w, enum fw_ckpt_state st)
{
    pthread_mutex_lock(&w->mu);
    atomic_store_explicit(&w->state, st, memory_order_release);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int write_tmp(fw_ckpt_writer *w)
{
    FILE *f = fopen(w->tmp, "wb");
    if (!f) {
        snprintf(w->err, sizeof w->err, "%s: %s", w->tmp, strerror(errno));
        return -1;
    }
    static char buf[1 << 16];    /* one writer thread per process */
    setvbuf(f, buf, _IOFBF, sizeof buf);
    char err[512];
    errno = 0;
    if (w->fill(w->ctx, f, err, sizeof err) != 0) {
        /* A write that failed (a full disk) sets the stream's error flag and
         * errno; the encoders report the failure without errno, and the
         * operator needs it ("No space left on device"), so it is added
         * here, where the stream is owned. */
        int e = errno;
        if (ferror(f) && e != 0 && !strstr(err, strerror(e)))
            snprintf(w->err, sizeof w->err, "writing %s: %s: %s", w->tmp, err, strerror(e));
        else
            snprintf(w->err, sizeof w->err, "writing %s: %s", w->tmp, err);
        fclose(f);
        return -1;
    }
    if (fflush(f) != 0)
        goto io;
    if (w->stall_ms > 0) {
        struct timespec ts = { w->stall_ms / 1000, (w->stall_ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
    }
    if (fsync(fileno(f)) != 0)
        goto io;
    if (fclose(f) != 0) {
        snprintf(w->err, sizeof w->err, "writing %s: %s", w->tmp, strerror(errno));
        return -1;
    }
    return 0;
io:
    snprintf(w->err, sizeof w->err, "writing %s: %s", w->tmp, strerror(errno));
    fclose(f);
    return -1;
}

static int publish_tmp(fw_ckpt_writer *w)
{
    if (rename(w->tmp, w->path) != 0) {
        snprintf(w->err, sizeof w->err, "renaming %s: %s", w->tmp, strerror(errno));
        return -1;
    }
    /* The rename itself survives a power cut only once the directory is
     * on disk; kill -9 needs no more than the rename. */
    int fd = open(w->dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
}

static int store_write(fw_ckpt_writer *w)
{
    if (!w->ops)
        return write_tmp(w);
    return w->ops->write(w->ops_self, w->fill, w->ctx, w->err, sizeof w->err);
}

static int store_publish(fw_ckpt_writer *w)
{
    if (!w->ops)
        return publish_tmp(w);
    return w->ops->publish(w->ops_self, w->err, sizeof w->err);
}

static void store_discard(fw_ckpt_writer *w)
{
    if (!w->ops)
        unlink(w->tmp);
    else
        w->ops->discard(w->ops_self);
}

static void *writer_main(void *arg)
{
    fw_ckpt_writer *w = arg;
    /* Background work: let the stream's threads have the CPU first. */
    setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        int st = atomic_load(&w->state);
        if (w->quit)
            break;
        if (st == FW_CKPT_WRITING) {
            pthread_mutex_unlock(&w->mu);
            int64_t t0 = fw_mono_ns();
            int rc = store_write(w);
            w->write_ns = fw_mono_ns() - t0;
            if (rc != 0)
                store_discard(w);
            set_state(w, rc == 0 ? FW_CKPT_WRITTEN : FW_CKPT_FAILED);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        if (st == FW_CKPT_WRITTEN && w->publish) {
            w->publish = false;
            atomic_store(&w->state, FW_CKPT_PUBLISHING);
            pthread_mutex_unlock(&w->mu);
            int64_t t0 = fw_mono_ns();
            int rc = store_publish(w);
            w->publish_ns = fw_mono_ns() - t0;
            if (rc != 0)
                store_discard(w);
            set_state(w, rc == 0 ? FW_CKPT_DONE : FW_CKPT_FAILED);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

fw_ckpt_writer *fw_ckpt_writer_new(const char *dir, const char *name)
{
    fw_ckpt_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    size_t n = strlen(dir) + strlen(name) + 8;
    w->dir = strdup(dir);
    w->path = malloc(n);
    w->tmp = malloc(n);
    if (!w->dir || !w->path || !w->tmp)
        goto fail;
    snprintf(w->path, n, "%s/%s", dir, name);
    snprintf(w->tmp, n, "%s/%s.tmp", dir, name);
    const char *stall = getenv("FW_TEST_CHECKPOINT_STALL_MS");
    w->stall_ms = stall ? atoll(stall) : 0;
    atomic_init(&w->state, FW_CKPT_IDLE);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        goto fail;
    }
    return w;
fail:
    free(w->dir);
    free(w->path);
    free(w->tmp);
    free(w);
    return NULL;
}

fw_ckpt_writer *fw_ckpt_writer_new_store(const fw_ckpt_store_ops *ops, void *self)
{
    /* The directory's names are unused with a store; they keep the
     * messages and the code paths the same. */
    fw_ckpt_writer *w = fw_ckpt_writer_new(".", ops->name);
    if (w) {
        w->ops = ops;
        w->ops_self = self;
    }
    return w;
}

void fw_ckpt_writer_free(fw_ckpt_writer *w)
{
    if (!w)
        return;
    fw_ckpt_writer_wait(w, NULL, 0);
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    if (atomic_load(&w->state) == FW_CKPT_WRITTEN)
        store_discard(w);        /* written, never published */
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->dir);
    free(w->path);
    free(w->tmp);
    free(w);
}

int fw_ckpt_writer_start(fw_ckpt_writer *w, fw_ckpt_fill_fn fill, void *ctx)
{
    pthread_mutex_lock(&w->mu);
    if (atomic_load(&w->state) != FW_CKPT_IDLE) {
        pthread_mutex_unlock(&w->mu);
        return -1;
    }
    w->fill = fill;
    w->ctx = ctx;
    w->publish = false;
    w->err[0] = '\0';
    w->write_ns = w->publish_ns = 0;
    atomic_store(&w->state, FW_CKPT_WRITING);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

void fw_ckpt_writer_publish(fw_ckpt_writer *w)
{
    pthread_mutex_lock(&w->mu);
    w->publish = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static enum fw_ckpt_state report(fw_ckpt_writer *w, int st, char *err, size_t errlen)
{
    if (st == FW_CKPT_FAILED && err)
        snprintf(err, errlen, "%s", w->err);
    return (enum fw_ckpt_state)st;
}

enum fw_ckpt_state fw_ckpt_writer_state(fw_ckpt_writer *w, char *err, size_t errlen)
{
    int st = atomic_load_explicit(&w->state, memory_order_acquire);
    return report(w, st, err, errlen);
}

enum fw_ckpt_state fw_ckpt_writer_wait(fw_ckpt_writer *w, char *err, size_t errlen)
{
    pthread_mutex_lock(&w->mu);
    int st;
    while ((st = atomic_load(&w->state)) == FW_CKPT_WRITING ||
           st == FW_CKPT_PUBLISHING || (st == FW_CKPT_WRITTEN && w->publish))
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    return report(w, st, err, errlen);
}

void fw_ckpt_writer_reset(fw_ckpt_writer *w)
{
    int st = fw_ckpt_writer_wait(w, NULL, 0);
    if (st == FW_CKPT_WRITTEN)
        store_discard(w);        /* dropped before it was published */
    pthread_mutex_lock(&w->mu);
    w->publish = false;
    atomic_store(&w->state, FW_CKPT_IDLE);
    pthread_mutex_unlock(&w->mu);
}

double fw_ckpt_writer_write_seconds(const fw_ckpt_writer *w)
{
    return (double)w->write_ns / 1e9;
}

double fw_ckpt_writer_publish_seconds(const fw_ckpt_writer *w)
{
    return (double)w->publish_ns / 1e9;
}

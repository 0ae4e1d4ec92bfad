/* Reset generations: a request begun before a reset changes nothing after it. */
#include "generation.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

/* Requests hold `lock` shared while they check their generation and change
 * state; a reset holds it exclusively. `current` is written only with both
 * `lock` (exclusive) and `mu` held, so holding either is enough to read it.
 * Sleepers wait on `cv` under `mu`, which a reset or a stop broadcasts. */
static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static unsigned long current;
static bool stopping;

void generation_init(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    /* Delays are measured on the monotonic clock: setting the date must
     * neither stretch nor skip them. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &attr);
    pthread_condattr_destroy(&attr);
    stopping = false;
}

void generation_stop(void)
{
    pthread_mutex_lock(&mu);
    stopping = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

void generation_shutdown(void)
{
    pthread_cond_destroy(&cv);
}

unsigned long generation_enter(void)
{
    pthread_rwlock_rdlock(&lock);
    return current;
}

bool generation_resume(unsigned long gen)
{
    pthread_rwlock_rdlock(&lock);
    if (current == gen)
        return true;
    pthread_rwlock_unlock(&lock);
    return false;
}

void generation_leave(void)
{
    pthread_rwlock_unlock(&lock);
}

void generation_reset_begin(void)
{
    pthread_rwlock_wrlock(&lock);
}

void generation_reset_end(void)
{
    pthread_mutex_lock(&mu);
    current++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_rwlock_unlock(&lock);
}

static struct timespec deadline(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

bool generation_sleep(unsigned long gen, long ms)
{
    struct timespec until = deadline(ms);
    pthread_mutex_lock(&mu);
    while (!stopping && current == gen && pthread_cond_timedwait(&cv, &mu, &until) != ETIMEDOUT)
        ;
    bool ok = !stopping && current == gen;
    pthread_mutex_unlock(&mu);
    return ok;
}

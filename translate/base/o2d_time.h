/*
 * o2d_time.h: the monotonic clock in milliseconds, for deadlines passed between modules.
 * Translation code never reads a clock (its times are passed in); this is for the threads
 * that run it.
 */
#ifndef O2D_TIME_H
#define O2D_TIME_H

#include <stdint.h>
#include <time.h>

static inline int64_t o2d_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The same clock in nanoseconds (the LLM Obs trace buffer's deadlines). */
static inline int64_t o2d_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The wall clock in nanoseconds since the Unix epoch, the clock span times are on. */
static inline int64_t o2d_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A monotonic millisecond deadline as a timespec, for pthread_cond_timedwait on a condition
 * variable whose clock is CLOCK_MONOTONIC. */
static inline struct timespec o2d_timespec_from_ms(int64_t ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    return ts;
}

#endif

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

#endif

// Helpers shared by the benchmark drivers (stdio_floor.c, loadgen.c).
#ifndef MCPX_BENCH_COMMON_H
#define MCPX_BENCH_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void die(const char *what) { perror(what); exit(2); }

static inline int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/// The p-th quantile (0...1) of sorted nanosecond samples, in microseconds.
static inline double pct(const uint64_t *v, size_t n, double p) {
    if (n == 0) return 0;
    return (double)v[(size_t)(p * (double)(n - 1) + 0.5)] / 1000.0;
}
#endif

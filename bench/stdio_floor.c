// stdio_floor: the raw stdio floor for the gateway benchmark.
//
// Spawns an MCP stdio server directly (no proxy), does initialize + notifications/initialized,
// then runs `tools/call` on one tool keeping C requests in flight, and reports per-call latency
// (p50/p90/p99/max, microseconds), calls/s, and the CPU time of this driver and of the server.
// It is the number the proxy is compared with: the cost of one round trip over a pipe pair to
// the same upstream, with no JSON parsing on the hot path (ids are read with a byte scan).
//
// Usage: stdio_floor [-n CALLS] [-w WARMUP] [-c INFLIGHT] [-t TOOL] [-a ARGS_JSON] -- CMD [ARGS...]
// Output: one line of key=value pairs (machine readable, see bench/run.sh).
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"


static int to_child = -1, from_child = -1;
static char rbuf[1 << 22];
static size_t rlen = 0;

static void write_all(const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(to_child, p, n);
        if (w < 0) { if (errno == EINTR) continue; die("write to server"); }
        p += w; n -= (size_t)w;
    }
}

// Returns a pointer to the next complete line (NUL-terminated, newline stripped) or NULL when
// more bytes are needed. `consumed` tells the caller how much to drop afterwards.
static char *next_line(size_t *consumed) {
    char *nl = memchr(rbuf, '\n', rlen);
    if (!nl) return NULL;
    *nl = 0;
    *consumed = (size_t)(nl - rbuf) + 1;
    return rbuf;
}

static void drop(size_t n) { memmove(rbuf, rbuf + n, rlen - n); rlen -= n; }

static void fill(void) {
    if (rlen == sizeof rbuf) { fprintf(stderr, "stdio_floor: line longer than buffer\n"); exit(2); }
    ssize_t r = read(from_child, rbuf + rlen, sizeof rbuf - rlen);
    if (r == 0) { fprintf(stderr, "stdio_floor: server closed stdout\n"); exit(2); }
    if (r < 0) { if (errno == EINTR) return; die("read from server"); }
    rlen += (size_t)r;
}

// Reads lines until one carries `"id":<want>`; returns nothing (blocking, used for setup only).
static void wait_id(long want) {
    for (;;) {
        size_t used;
        char *line;
        while ((line = next_line(&used))) {
            char *p = strstr(line, "\"id\":");
            long id = p ? strtol(p + 5, NULL, 10) : -1;
            int error = strstr(line, "\"error\"") != NULL;
            drop(used);
            if (id == want) {
                if (error) { fprintf(stderr, "stdio_floor: setup request %ld failed\n", want); exit(2); }
                return;
            }
        }
        fill();
    }
}

int main(int argc, char **argv) {
    long calls = 20000, warmup = 2000, inflight = 1;
    const char *tool = "echo", *targs = "{\"text\":\"hello\"}";
    int i;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) { i++; break; }
        if (i + 1 >= argc) { fprintf(stderr, "stdio_floor: %s needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "-n")) calls = atol(argv[++i]);
        else if (!strcmp(argv[i], "-w")) warmup = atol(argv[++i]);
        else if (!strcmp(argv[i], "-c")) inflight = atol(argv[++i]);
        else if (!strcmp(argv[i], "-t")) tool = argv[++i];
        else if (!strcmp(argv[i], "-a")) targs = argv[++i];
        else { fprintf(stderr, "stdio_floor: unknown option %s\n", argv[i]); return 2; }
    }
    if (i >= argc || calls <= 0 || inflight <= 0) {
        fprintf(stderr, "usage: stdio_floor [-n CALLS] [-w WARMUP] [-c INFLIGHT] [-t TOOL] [-a ARGS_JSON] -- CMD [ARGS...]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    int in[2], out[2];
    if (pipe(in) || pipe(out)) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        dup2(in[0], 0); dup2(out[1], 1);
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        execvp(argv[i], argv + i);
        perror("exec server");
        _exit(127);
    }
    close(in[0]); close(out[1]);
    to_child = in[1]; from_child = out[0];

    const char *init = "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\","
                       "\"capabilities\":{},\"clientInfo\":{\"name\":\"stdio_floor\",\"version\":\"1\"}}}\n";
    write_all(init, strlen(init));
    wait_id(0);
    const char *inited = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";
    write_all(inited, strlen(inited));

    long total = warmup + calls;
    uint64_t *sent = calloc((size_t)total + 1, sizeof *sent);
    uint64_t *lat = calloc((size_t)calls, sizeof *lat);
    if (!sent || !lat) die("calloc");
    char req[8192];
    long next_id = 1, done = 0, nlat = 0, errors = 0;
    uint64_t t_start = 0;
    struct rusage ru0;

    while (done < total) {
        // Keep `inflight` requests outstanding (closed loop).
        while (next_id <= total && next_id - 1 - done < inflight) {
            int n = snprintf(req, sizeof req,
                             "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\",\"arguments\":%s}}\n",
                             next_id, tool, targs);
            sent[next_id] = now_ns();
            write_all(req, (size_t)n);
            next_id++;
        }
        size_t used;
        char *line;
        int got = 0;
        while ((line = next_line(&used))) {
            char *p = strstr(line, "\"id\":");
            long id = p ? strtol(p + 5, NULL, 10) : -1;
            if (id >= 1 && id <= total) {
                uint64_t t = now_ns();
                if (strstr(line, "\"error\"")) errors++;
                if (id == warmup) { t_start = t; getrusage(RUSAGE_SELF, &ru0); }
                if (id > warmup && nlat < calls) lat[nlat++] = t - sent[id];
                done++;
                got = 1;
            }
            drop(used);
        }
        if (!got) fill();
    }
    uint64_t t_end = now_ns();
    if (warmup == 0) t_start = sent[1];
    struct rusage ru1;
    getrusage(RUSAGE_SELF, &ru1);
    close(to_child);
    int status = 0;
    waitpid(pid, &status, 0);
    struct rusage ruc;
    getrusage(RUSAGE_CHILDREN, &ruc);

    qsort(lat, (size_t)nlat, sizeof *lat, cmp_u64);
    double secs = (double)(t_end - t_start) / 1e9;
    double self_cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6
                    + (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    double child_cpu = ruc.ru_utime.tv_sec + ruc.ru_utime.tv_usec / 1e6 + ruc.ru_stime.tv_sec + ruc.ru_stime.tv_usec / 1e6;
    printf("calls=%ld errors=%ld inflight=%ld secs=%.3f rps=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f "
           "driver_cpu_pct=%.1f server_cpu_s=%.2f\n",
           nlat, errors, inflight, secs, secs > 0 ? (double)nlat / secs : 0, pct(lat, nlat, 0.50), pct(lat, nlat, 0.90),
           pct(lat, nlat, 0.99), nlat ? lat[nlat - 1] / 1000.0 : 0, secs > 0 ? 100.0 * self_cpu / secs : 0, child_cpu);
    return errors ? 1 : 0;
}

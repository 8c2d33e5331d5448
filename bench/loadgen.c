// loadgen: a lean closed-loop load generator for an MCP streamable-HTTP endpoint.
//
// Opens C keep-alive TCP connections, gives each its own MCP session (initialize, then
// notifications/initialized with the returned Mcp-Session-Id), then on every connection sends
// one JSON-RPC POST at a time (closed loop) for WARMUP + DURATION seconds, recording the latency
// of each call made during DURATION. One thread, epoll, no JSON parsing: it must cost far less
// CPU than the server it measures (its own CPU share is printed, check it).
//
// Usage: loadgen -p PORT [-h 127.0.0.1] [-P /mcp] [-c SESSIONS] [-d SECONDS] [-w SECONDS]
//                [-b BODY] [-v PROTOCOL_VERSION] [-n (no session: skip initialize)] [-a TOKEN]
//   TOKEN is sent on every request as `Authorization: Bearer TOKEN`.
//   BODY is the JSON-RPC request; the text {ID} in it is replaced by a fresh integer id.
//   Default body: tools/call call_tool {name: "fixture:echo", args: {text: "hello"}}.
// Output: one line of key=value pairs. A reply counts as an error unless it is HTTP 200 and
// its body holds "result" and no "isError":true.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

static void fail(const char *msg) { fprintf(stderr, "loadgen: %s\n", msg); exit(2); }

enum { BUFSZ = 1 << 20 };

typedef struct {
    int fd;
    char session[256];
    char out[16384];
    size_t out_len, out_off;
    char *in;
    size_t in_len;
    uint64_t sent_at;
} conn_t;

static const char *host = "127.0.0.1", *path = "/mcp", *proto = "2025-06-18";
static const char *token = NULL; /* -a: sent as "Authorization: Bearer TOKEN" */
static int port = 0;

static int connect_one(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) fail("host must be an IPv4 address");
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void build(conn_t *c, const char *method, const char *body) {
    size_t blen = strlen(body);
    int n = snprintf(c->out, sizeof c->out,
                     "%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                     "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: %s\r\n"
                     "%s%s%s%s%s%sContent-Length: %zu\r\n\r\n%s",
                     method, path, host, port, proto, c->session[0] ? "Mcp-Session-Id: " : "", c->session,
                     c->session[0] ? "\r\n" : "", token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "", blen, body);
    if (n < 0 || (size_t)n >= sizeof c->out) fail("request too large");
    c->out_len = (size_t)n;
    c->out_off = 0;
}

// Parses c->in; returns the total length of a complete response (headers + body) or 0 when more
// bytes are needed, -1 on a malformed response. Sets *status and the header/body bounds.
static long parse(conn_t *c, int *status, const char **body, size_t *body_len) {
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t hlen = (size_t)(end - c->in) + 4;
    if (c->in_len < 12 || strncmp(c->in, "HTTP/1.", 7)) return -1;
    *status = atoi(c->in + 9);
    long clen = -1;
    int chunked = 0;
    for (char *p = c->in; p < end;) {
        char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        if (!eol) break;
        size_t l = (size_t)(eol - p);
        if (l > 15 && !strncasecmp(p, "content-length:", 15)) clen = atol(p + 15);
        if (l > 18 && !strncasecmp(p, "transfer-encoding:", 18) && memmem(p, l, "chunked", 7)) chunked = 1;
        if (l > 15 && !strncasecmp(p, "mcp-session-id:", 15)) {
            char *v = p + 15;
            while (*v == ' ') v++;
            size_t vl = (size_t)(eol - v);
            if (vl < sizeof c->session) { memcpy(c->session, v, vl); c->session[vl] = 0; }
        }
        p = eol + 2;
    }
    if (chunked) {
        // Walk the chunks; the body is left in place with chunk framing (callers only search it).
        size_t off = hlen;
        for (;;) {
            char *eol = memmem(c->in + off, c->in_len - off, "\r\n", 2);
            if (!eol) return 0;
            long sz = strtol(c->in + off, NULL, 16);
            size_t next = (size_t)(eol - c->in) + 2 + (size_t)sz + 2;
            if (next > c->in_len) return 0;
            off = next;
            if (sz == 0) break;
        }
        *body = c->in + hlen;
        *body_len = off - hlen;
        return (long)off;
    }
    if (clen < 0) clen = 0;  // no length and not chunked: only valid for bodiless replies here
    if (c->in_len < hlen + (size_t)clen) return 0;
    *body = c->in + hlen;
    *body_len = (size_t)clen;
    return (long)(hlen + (size_t)clen);
}

static int body_ok(int status, const char *body, size_t len) {
    return status == 200 && memmem(body, len, "\"result\"", 8) && !memmem(body, len, "\"isError\":true", 14);
}

// Blocking exchange used during setup. Returns the HTTP status.
static int exchange(conn_t *c, const char *method, const char *body, int *ok) {
    build(c, method, body);
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0) { if (errno == EINTR) continue; die("write"); }
        c->out_off += (size_t)w;
    }
    c->in_len = 0;
    for (;;) {
        int status;
        const char *b;
        size_t bl;
        long n = parse(c, &status, &b, &bl);
        if (n < 0) fail("malformed HTTP response during setup");
        if (n > 0) {
            if (ok) *ok = body_ok(status, b, bl);
            memmove(c->in, c->in + n, c->in_len - (size_t)n);
            c->in_len -= (size_t)n;
            return status;
        }
        ssize_t r = read(c->fd, c->in + c->in_len, BUFSZ - c->in_len);
        if (r == 0) fail("server closed the connection during setup");
        if (r < 0) { if (errno == EINTR) continue; die("read"); }
        c->in_len += (size_t)r;
    }
}

static char *body_tmpl;
static long next_id = 1;

static void next_request(conn_t *c) {
    char body[8192], idtxt[32];
    snprintf(idtxt, sizeof idtxt, "%ld", next_id++);
    const char *at = strstr(body_tmpl, "{ID}");
    if (at) snprintf(body, sizeof body, "%.*s%s%s", (int)(at - body_tmpl), body_tmpl, idtxt, at + 4);
    else snprintf(body, sizeof body, "%s", body_tmpl);
    build(c, "POST", body);
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
    int sessions = 1, use_session = 1;
    double duration = 5, warmup = 1;
    body_tmpl = "{\"jsonrpc\":\"2.0\",\"id\":{ID},\"method\":\"tools/call\",\"params\":{\"name\":\"call_tool\","
                "\"arguments\":{\"name\":\"fixture:echo\",\"args\":{\"text\":\"hello\"}}}}";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n")) { use_session = 0; continue; }
        if (i + 1 >= argc) fail("option needs a value");
        if (!strcmp(argv[i], "-p")) port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-h")) host = argv[++i];
        else if (!strcmp(argv[i], "-P")) path = argv[++i];
        else if (!strcmp(argv[i], "-c")) sessions = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-d")) duration = atof(argv[++i]);
        else if (!strcmp(argv[i], "-w")) warmup = atof(argv[++i]);
        else if (!strcmp(argv[i], "-b")) body_tmpl = argv[++i];
        else if (!strcmp(argv[i], "-v")) proto = argv[++i];
        else if (!strcmp(argv[i], "-a")) token = argv[++i];
        else { fprintf(stderr, "loadgen: unknown option %s\n", argv[i]); return 2; }
    }
    if (port <= 0 || sessions <= 0 || duration <= 0) fail("usage: loadgen -p PORT [-c SESSIONS] [-d SECONDS] [-w SECONDS] [-b BODY] [-a BEARER_TOKEN]");
    signal(SIGPIPE, SIG_IGN);

    conn_t *conns = calloc((size_t)sessions, sizeof *conns);
    if (!conns) die("calloc");
    uint64_t t_setup = now_ns();
    for (int i = 0; i < sessions; i++) {
        conn_t *c = &conns[i];
        c->in = malloc(BUFSZ);
        if (!c->in) die("malloc");
        c->fd = connect_one();
        if (use_session) {
            int st = exchange(c, "POST",
                              "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\","
                              "\"capabilities\":{},\"clientInfo\":{\"name\":\"loadgen\",\"version\":\"1\"}}}", NULL);
            if (st != 200) { fprintf(stderr, "loadgen: initialize answered HTTP %d\n", st); return 2; }
            if (!c->session[0]) fail("initialize returned no Mcp-Session-Id");
            st = exchange(c, "POST", "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", NULL);
            if (st != 202 && st != 200) { fprintf(stderr, "loadgen: notifications/initialized answered HTTP %d\n", st); return 2; }
        }
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    }
    double setup_ms = (double)(now_ns() - t_setup) / 1e6;

    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    size_t cap = 1 << 20, nlat = 0;
    uint64_t *lat = malloc(cap * sizeof *lat);
    if (!lat) die("malloc");
    long errors = 0, calls = 0;
    uint64_t t0 = now_ns();
    uint64_t t_measure = t0 + (uint64_t)(warmup * 1e9), t_end = t_measure + (uint64_t)(duration * 1e9);
    double cpu0 = -1;

    for (int i = 0; i < sessions; i++) {
        conn_t *c = &conns[i];
        next_request(c);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
        c->sent_at = now_ns();
    }
    struct epoll_event evs[256];
    int measuring = 0;
    for (;;) {
        uint64_t t = now_ns();
        if (!measuring && t >= t_measure) { measuring = 1; cpu0 = cpu_s(); t_measure = t; }
        if (t >= t_end) break;
        int n = epoll_wait(ep, evs, 256, 100);
        if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
        for (int k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            if (c->out_off < c->out_len && (evs[k].events & EPOLLOUT)) {
                ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
                if (w < 0 && errno != EAGAIN && errno != EINTR) die("write");
                if (w > 0) c->out_off += (size_t)w;
                if (c->out_off == c->out_len) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                    if (c->in_len == BUFSZ) fail("response larger than the buffer");
                    ssize_t r = read(c->fd, c->in + c->in_len, BUFSZ - c->in_len);
                    if (r == 0) fail("server closed a connection");
                    if (r < 0) { if (errno == EAGAIN) break; if (errno == EINTR) continue; die("read"); }
                    c->in_len += (size_t)r;
                }
                int status;
                const char *b;
                size_t bl;
                long used = parse(c, &status, &b, &bl);
                if (used < 0) fail("malformed HTTP response");
                if (used == 0) continue;
                uint64_t done = now_ns();
                if (!body_ok(status, b, bl)) {
                    if (errors < 3) fprintf(stderr, "loadgen: bad reply (HTTP %d): %.*s\n", status, (int)(bl > 300 ? 300 : bl), b);
                    errors++;
                }
                if (measuring && done <= t_end) {
                    if (nlat == cap) { cap *= 2; lat = realloc(lat, cap * sizeof *lat); if (!lat) die("realloc"); }
                    lat[nlat++] = done - c->sent_at;
                    calls++;
                }
                memmove(c->in, c->in + used, c->in_len - (size_t)used);
                c->in_len -= (size_t)used;
                next_request(c);
                c->sent_at = now_ns();
                ssize_t w = write(c->fd, c->out, c->out_len);
                if (w < 0 && errno != EAGAIN && errno != EINTR) die("write");
                if (w > 0) c->out_off = (size_t)w;
                if (c->out_off < c->out_len) {
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
        }
    }
    uint64_t t_stop = now_ns();
    double cpu = cpu_s() - (cpu0 < 0 ? 0 : cpu0);
    double secs = (double)(t_stop - t_measure) / 1e9;

    // End the sessions so the server does not keep them (best effort, blocking).
    for (int i = 0; i < sessions; i++) {
        conn_t *c = &conns[i];
        close(c->fd);
        if (use_session && c->session[0]) {
            c->fd = connect_one();
            c->in_len = 0;
            exchange(c, "DELETE", "", NULL);
            close(c->fd);
        }
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    printf("sessions=%d calls=%ld errors=%ld secs=%.3f rps=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f "
           "loadgen_cpu_pct=%.1f setup_ms=%.1f\n",
           sessions, calls, errors, secs, secs > 0 ? (double)calls / secs : 0, pct(lat, nlat, 0.5), pct(lat, nlat, 0.9),
           pct(lat, nlat, 0.99), nlat ? lat[nlat - 1] / 1000.0 : 0, secs > 0 ? 100.0 * cpu / secs : 0, setup_ms);
    return errors ? 1 : 0;
}

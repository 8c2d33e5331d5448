// mcpproxy-probe: an MCP stdio server (newline-delimited JSON-RPC) whose tools attempt the escapes
// a confined server must not achieve, and report exactly what happened. Plain C with no runtime, so
// it runs under a tight Landlock allowlist; the sandbox escape battery and the spawn benchmark use it.
//
// Every tool answers with structuredContent {"ok": bool, ...}: ok=true means the attempt SUCCEEDED
// (for an escape that is a failure of the sandbox), plus "errno"/"error" when it failed.
//
// Tools: ids, env, cwd, rlimits, read_file{path}, write_file{path,text}, list_dir{path},
// tcp_connect{host,port}, unix_connect{name} (abstract), fork_bomb{count}, memory_bomb{mb},
// kill{pid,signal}, ptrace{pid}, exec{path,args[]}, unshare, mount, echo{text},
// unix_path_connect{path}, fork_hold{count}, memory_bomb_procs{procs,mb}, fill_disk{path,mb},
// http_get{url,via} (through $http_proxy: via "proxy" = absolute-URI GET, "connect" = CONNECT
// tunnel then GET; ok=true when the final status is 200; "response" holds what came back).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

// ---- a small JSON reader: enough to find keys and read strings, numbers and string arrays ----

static const char *ws(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    return s;
}

/* Returns the position just after the JSON value starting at s, or NULL. */
static const char *skip_value(const char *s) {
    s = ws(s);
    if (*s == '"') {
        for (s++; *s; s++) {
            if (*s == '\\') { if (!*++s) return NULL; }
            else if (*s == '"') return s + 1;
        }
        return NULL;
    }
    if (*s == '{' || *s == '[') {
        char close = *s == '{' ? '}' : ']';
        s = ws(s + 1);
        if (*s == close) return s + 1;
        for (;;) {
            if (close == '}') {
                s = skip_value(s);              /* key */
                if (!s) return NULL;
                s = ws(s);
                if (*s++ != ':') return NULL;
            }
            s = skip_value(s);
            if (!s) return NULL;
            s = ws(s);
            if (*s == ',') { s = ws(s + 1); continue; }
            if (*s == close) return s + 1;
            return NULL;
        }
    }
    if (!*s) return NULL;
    while (*s && *s != ',' && *s != '}' && *s != ']' && *s != ' ' && *s != '\n' && *s != '\r' && *s != '\t') s++;
    return s;
}

/* The value of key `key` in the object starting at obj, or NULL. */
static const char *find_key(const char *obj, const char *key) {
    if (!obj) return NULL;
    obj = ws(obj);
    if (*obj != '{') return NULL;
    const char *s = ws(obj + 1);
    size_t klen = strlen(key);
    while (*s == '"') {
        const char *kstart = s + 1;
        const char *kend = skip_value(s);
        if (!kend) return NULL;
        s = ws(kend);
        if (*s++ != ':') return NULL;
        s = ws(s);
        if ((size_t)(kend - 1 - kstart) == klen && strncmp(kstart, key, klen) == 0) return s;
        s = skip_value(s);
        if (!s) return NULL;
        s = ws(s);
        if (*s == ',') s = ws(s + 1);
    }
    return NULL;
}

/* Decodes the JSON string at s into a fresh buffer (\uXXXX above ASCII becomes '?'). */
static char *read_string(const char *s) {
    if (!s || *s != '"') return NULL;
    const char *end = skip_value(s);
    if (!end) return NULL;
    char *out = malloc((size_t)(end - s) + 1), *o = out;
    for (s++; s < end - 1; s++) {
        if (*s != '\\') { *o++ = *s; continue; }
        s++;
        switch (*s) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'u': {
            unsigned v = 0;
            if (sscanf(s + 1, "%4x", &v) == 1) s += 4;
            *o++ = v < 0x80 ? (char)v : '?';
            break;
        }
        default: *o++ = *s;
        }
    }
    *o = 0;
    return out;
}

static long long read_int(const char *s, long long dflt) {
    if (!s) return dflt;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    return end == s ? dflt : v;
}

// ---- a growable output buffer with JSON escaping ----

struct buf { char *p; size_t len, cap; };

static void put(struct buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }
static void putf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct buf *b, const char *fmt, ...) {
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put(b, tmp, n < (int)sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
static void put_json_string(struct buf *b, const char *s, size_t n) {
    puts_(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { char e[2] = { '\\', (char)c }; put(b, e, 2); }
        else if (c == '\n') puts_(b, "\\n");
        else if (c == '\t') puts_(b, "\\t");
        else if (c < 0x20 || c >= 0x80) putf(b, "\\u%04x", c);  /* bytes, not code points: enough for reports */
        else put(b, (const char *)&c, 1);
    }
    puts_(b, "\"");
}

static void put_errno(struct buf *r, int e) {
    putf(r, "\"ok\":false,\"errno\":%d,\"error\":", e);
    const char *m = strerror(e);
    put_json_string(r, m, strlen(m));
}

// ---- tools ----

static void tool_ids(struct buf *r) {
    putf(r, "\"ok\":true,\"uid\":%d,\"euid\":%d,\"gid\":%d,\"egid\":%d,\"pid\":%d,\"pgid\":%d,\"sid\":%d,\"no_new_privs\":%d",
         getuid(), geteuid(), getgid(), getegid(), getpid(), getpgrp(), getsid(0), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "Seccomp:", 8) == 0) putf(r, ",\"seccomp\":%d", atoi(line + 8));
        }
        fclose(f);
    }
}

static void tool_env(struct buf *r) {
    puts_(r, "\"ok\":true,\"env\":[");
    for (char **e = environ; *e; e++) {
        if (e != environ) puts_(r, ",");
        put_json_string(r, *e, strlen(*e));
    }
    puts_(r, "]");
}

static void tool_cwd(struct buf *r) {
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) { put_errno(r, errno); return; }
    puts_(r, "\"ok\":true,\"cwd\":");
    put_json_string(r, cwd, strlen(cwd));
}

static void tool_rlimits(struct buf *r) {
    struct { int res; const char *name; } kinds[] = {
        { RLIMIT_AS, "as" }, { RLIMIT_DATA, "data" }, { RLIMIT_NOFILE, "nofile" }, { RLIMIT_NPROC, "nproc" },
        { RLIMIT_CPU, "cpu" }, { RLIMIT_CORE, "core" }, { RLIMIT_FSIZE, "fsize" },
    };
    puts_(r, "\"ok\":true");
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        struct rlimit rl;
        getrlimit(kinds[i].res, &rl);
        if (rl.rlim_cur == RLIM_INFINITY) putf(r, ",\"%s\":-1", kinds[i].name);
        else putf(r, ",\"%s\":%llu", kinds[i].name, (unsigned long long)rl.rlim_cur);
    }
}

static void tool_read_file(struct buf *r, const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { put_errno(r, errno); return; }
    char data[512];
    ssize_t n = read(fd, data, sizeof data);
    int e = errno;
    close(fd);
    if (n < 0) { put_errno(r, e); return; }
    puts_(r, "\"ok\":true,\"content\":");
    put_json_string(r, data, (size_t)n);
}

static void tool_write_file(struct buf *r, const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) { put_errno(r, errno); return; }
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    if (n < 0) { put_errno(r, e); return; }
    putf(r, "\"ok\":true,\"bytes\":%zd", n);
}

static void tool_list_dir(struct buf *r, const char *path) {
    DIR *d = opendir(path);
    if (!d) { put_errno(r, errno); return; }
    puts_(r, "\"ok\":true,\"entries\":[");
    struct dirent *e;
    int first = 1;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!first) puts_(r, ",");
        first = 0;
        put_json_string(r, e->d_name, strlen(e->d_name));
    }
    closedir(d);
    puts_(r, "]");
}

static void tool_tcp_connect(struct buf *r, const char *host, long long port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { put_errno(r, errno); return; }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    if (inet_pton(AF_INET, host ? host : "127.0.0.1", &sa.sin_addr) != 1) { close(fd); put_errno(r, EINVAL); return; }
    /* A dropped SYN must not hang the tool: connect gives up after 5 s (EINPROGRESS). */
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { int e = errno; close(fd); put_errno(r, e); return; }
    close(fd);
    puts_(r, "\"ok\":true");
}

/* Connects to IPv4 "a.b.c.d" port `port` (with a 10 s receive timeout); -errno on failure. */
static int connect4(const char *host, int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) { close(fd); return -EINVAL; }
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { int e = errno; close(fd); return -e; }
    return fd;
}

static int send_all(int fd, const char *s) {
    size_t n = strlen(s), off = 0;
    while (off < n) { ssize_t k = write(fd, s + off, n - off); if (k <= 0) return -1; off += (size_t)k; }
    return 0;
}

/* Reads into data until `stop` appears (or EOF / full); returns the length. */
static size_t read_until(int fd, char *data, size_t cap, const char *stop) {
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = read(fd, data + n, cap - 1 - n)) > 0) {
        n += (size_t)k;
        data[n] = 0;
        if (stop && strstr(data, stop)) break;
    }
    data[n] = 0;
    return n;
}

static void tool_http_get(struct buf *r, const char *url, const char *via) {
    const char *proxy = getenv("http_proxy");
    if (!proxy) proxy = getenv("HTTP_PROXY");
    if (!proxy || strncmp(proxy, "http://", 7)) { puts_(r, "\"ok\":false,\"error\":\"no http_proxy\""); return; }
    char phost[64] = { 0 };
    int pport = 0;
    if (sscanf(proxy + 7, "%63[0-9.]:%d", phost, &pport) != 2) { puts_(r, "\"ok\":false,\"error\":\"bad http_proxy\""); return; }
    if (strncmp(url, "http://", 7)) { puts_(r, "\"ok\":false,\"error\":\"url must be http://\""); return; }
    const char *auth = url + 7;
    const char *slash = strchr(auth, '/');
    char authority[256] = { 0 };
    size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);
    if (alen >= sizeof authority) alen = sizeof authority - 1;
    memcpy(authority, auth, alen);
    const char *path = slash ? slash : "/";
    int fd = connect4(phost, pport);
    if (fd < 0) { put_errno(r, -fd); return; }
    static char data[8192];
    char req[1024];
    if (via && !strcmp(via, "connect")) {
        snprintf(req, sizeof req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority);
        send_all(fd, req);
        size_t n = read_until(fd, data, sizeof data, "\r\n\r\n");
        if (n < 12 || strncmp(data + 9, "200", 3)) {
            close(fd);
            puts_(r, "\"ok\":false,\"stage\":\"connect\",\"response\":");
            put_json_string(r, data, n);
            return;
        }
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, authority);
    } else {
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", url, authority);
    }
    send_all(fd, req);
    size_t n = read_until(fd, data, sizeof data, NULL);
    close(fd);
    int ok = n >= 12 && !strncmp(data + 9, "200", 3);
    putf(r, "\"ok\":%s,\"response\":", ok ? "true" : "false");
    put_json_string(r, data, n);
}

static void tool_unix_connect(struct buf *r, const char *name) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { put_errno(r, errno); return; }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t n = strlen(name);
    if (n + 1 > sizeof sa.sun_path) n = sizeof sa.sun_path - 1;
    memcpy(sa.sun_path + 1, name, n);  /* leading NUL: the abstract namespace */
    if (connect(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0) {
        int e = errno; close(fd); put_errno(r, e); return;
    }
    close(fd);
    puts_(r, "\"ok\":true");
}

static void tool_fork_bomb(struct buf *r, long long count) {
    if (count < 1 || count > 100000) count = 1000;
    pid_t *pids = calloc((size_t)count, sizeof(pid_t));
    long long made = 0;
    int e = 0;
    for (; made < count; made++) {
        pid_t p = fork();
        if (p < 0) { e = errno; break; }
        if (p == 0) { pause(); _exit(0); }
        pids[made] = p;
    }
    for (long long i = 0; i < made; i++) kill(pids[i], SIGKILL);
    for (long long i = 0; i < made; i++) waitpid(pids[i], NULL, 0);
    free(pids);
    if (made == count) putf(r, "\"ok\":true,\"forked\":%lld", made);
    else { put_errno(r, e); putf(r, ",\"forked\":%lld", made); }
}

static void tool_memory_bomb(struct buf *r, long long mb) {
    if (mb < 1) mb = 1024;
    size_t size = (size_t)mb << 20;
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { put_errno(r, errno); putf(r, ",\"mb\":%lld", mb); return; }
    for (size_t i = 0; i < size; i += 4096) p[i] = 1;  /* commit every page */
    munmap(p, size);
    putf(r, "\"ok\":true,\"mb\":%lld", mb);
}

static void tool_unix_path_connect(struct buf *r, const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { put_errno(r, errno); puts_(r, ",\"step\":\"socket\""); return; }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno; close(fd); put_errno(r, e); puts_(r, ",\"step\":\"connect\""); return;
    }
    close(fd);
    puts_(r, "\"ok\":true");
}

/* Forks `count` children that stay (paused) until the server's process group is killed: a fork
   bomb that holds its processes, so another server's forks show whether limits are shared. */
static void tool_fork_hold(struct buf *r, long long count) {
    if (count < 1 || count > 100000) count = 1000;
    long long made = 0;
    int e = 0;
    for (; made < count; made++) {
        pid_t p = fork();
        if (p < 0) { e = errno; break; }
        if (p == 0) { for (;;) pause(); }
    }
    if (made == count) putf(r, "\"ok\":true,\"forked\":%lld", made);
    else { put_errno(r, e); putf(r, ",\"forked\":%lld", made); }
}

/* `procs` children each touch `mb` MiB and report over a pipe when done; the parent waits up to
   20 s and reports how many finished and how many were killed (an OOM kill is SIGKILL). */
static void tool_memory_bomb_procs(struct buf *r, long long procs, long long mb) {
    if (procs < 1 || procs > 64) procs = 3;
    if (mb < 1) mb = 1024;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) { put_errno(r, errno); return; }
    pid_t pids[64];
    int started = 0;
    for (; started < procs; started++) {
        pid_t p = fork();
        if (p < 0) break;
        if (p == 0) {
            size_t size = (size_t)mb << 20;
            char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) _exit(2);
            for (size_t i = 0; i < size; i += 4096) m[i] = 1;
            char c = 'x';
            if (write(fds[1], &c, 1) < 0) {}
            for (;;) pause();   /* keep the memory until killed */
        }
        pids[started] = p;
    }
    close(fds[1]);
    int finished = 0, killed = 0, failed = 0;
    int reaped[64] = { 0 };
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int fl = fcntl(fds[0], F_GETFL);
    fcntl(fds[0], F_SETFL, fl | O_NONBLOCK);
    while (finished + killed + failed < started) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 20) break;
        char c;
        while (read(fds[0], &c, 1) == 1) finished++;
        for (int i = 0; i < started; i++) {
            int status;
            if (reaped[i] || waitpid(pids[i], &status, WNOHANG) != pids[i]) continue;
            reaped[i] = 1;
            if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) killed++; else failed++;
        }
        usleep(10000);
    }
    for (int i = 0; i < started; i++) if (!reaped[i]) { kill(pids[i], SIGKILL); waitpid(pids[i], NULL, 0); }
    close(fds[0]);
    putf(r, "\"ok\":%s,\"started\":%d,\"finished\":%d,\"killed\":%d,\"failed\":%d,\"mb\":%lld",
         finished == started && killed == 0 && failed == 0 ? "true" : "false", started, finished, killed, failed, mb);
}

/* Writes 1 MiB chunks to `path` until `mb` MiB are written or a write fails. */
static void tool_fill_disk(struct buf *r, const char *path, long long mb) {
    signal(SIGXFSZ, SIG_IGN);  /* RLIMIT_FSIZE: EFBIG instead of a signal */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) { put_errno(r, errno); return; }
    static char chunk[1 << 20];
    memset(chunk, 'z', sizeof chunk);
    long long written = 0;
    int e = 0;
    while (written < ((long long)mb << 20)) {
        ssize_t n = write(fd, chunk, sizeof chunk);
        if (n <= 0) { e = n < 0 ? errno : ENOSPC; break; }
        written += n;
    }
    close(fd);
    unlink(path);
    if (!e) putf(r, "\"ok\":true,\"bytes\":%lld", written);
    else { put_errno(r, e); putf(r, ",\"bytes\":%lld", written); }
}

static void tool_kill(struct buf *r, long long pid, long long sig) {
    if (kill((pid_t)pid, (int)sig) < 0) { put_errno(r, errno); return; }
    puts_(r, "\"ok\":true");
}

static void tool_ptrace(struct buf *r, long long pid) {
    if (ptrace(PTRACE_ATTACH, (pid_t)pid, NULL, NULL) < 0) { put_errno(r, errno); return; }
    waitpid((pid_t)pid, NULL, __WALL);
    ptrace(PTRACE_DETACH, (pid_t)pid, NULL, NULL);
    puts_(r, "\"ok\":true");
}

static void tool_exec(struct buf *r, const char *path, const char *args) {
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)path;
    const char *s = args ? ws(args) : NULL;
    if (s && *s == '[') {
        s = ws(s + 1);
        while (*s == '"' && argc < 63) {
            argv[argc++] = read_string(s);
            s = ws(skip_value(s));
            if (*s == ',') s = ws(s + 1);
        }
    }
    argv[argc] = NULL;
    int out[2], errp[2];
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) { put_errno(r, errno); return; }
    pid_t pid = fork();
    if (pid < 0) { put_errno(r, errno); return; }
    if (pid == 0) {
        dup2(out[1], 1);
        execv(path, argv);
        int e = errno;
        if (write(errp[1], &e, sizeof e) < 0) {}
        _exit(127);
    }
    close(out[1]);
    close(errp[1]);
    char data[4096];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof data && (k = read(out[0], data + n, sizeof data - n)) > 0) n += (size_t)k;
    int exec_errno = 0;
    if (read(errp[0], &exec_errno, sizeof exec_errno) != sizeof exec_errno) exec_errno = 0;
    close(out[0]);
    close(errp[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (exec_errno) { put_errno(r, exec_errno); return; }
    putf(r, "\"ok\":true,\"status\":%d,\"stdout\":", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    put_json_string(r, data, n);
}

static void tool_unshare(struct buf *r) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0) { put_errno(r, errno); return; }
    puts_(r, "\"ok\":true");
}

static void tool_mount(struct buf *r) {
    if (mount("none", "/tmp", "tmpfs", 0, NULL) < 0) { put_errno(r, errno); return; }
    puts_(r, "\"ok\":true");
}

// ---- MCP framing ----

static void send_line(struct buf *b) {
    put(b, "\n", 1);
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = write(1, b->p + off, b->len - off);
        if (n < 0) { if (errno == EINTR) continue; exit(1); }
        off += (size_t)n;
    }
}

static const char *TOOLS[][2] = {
    { "ids", "uid, gid, no_new_privs, seccomp mode, process group" },
    { "env", "the environment" },
    { "cwd", "the working directory" },
    { "rlimits", "the resource limits" },
    { "echo", "echo {text}" },
    { "read_file", "read {path}" },
    { "write_file", "create/overwrite {path} with {text}" },
    { "list_dir", "list {path}" },
    { "tcp_connect", "TCP connect to {host}:{port}" },
    { "unix_connect", "connect to the abstract unix socket {name}" },
    { "fork_bomb", "fork {count} children" },
    { "memory_bomb", "allocate and touch {mb} MiB" },
    { "kill", "send {signal} to {pid}" },
    { "ptrace", "PTRACE_ATTACH to {pid}" },
    { "exec", "run {path} with {args}, capture stdout" },
    { "unshare", "create a user+network namespace" },
    { "mount", "mount a tmpfs on /tmp" },
    { "unix_path_connect", "connect to the pathname unix socket {path}" },
    { "fork_hold", "fork {count} children that stay" },
    { "memory_bomb_procs", "{procs} children each touch {mb} MiB" },
    { "fill_disk", "write {mb} MiB to {path}" },
    { "http_get", "GET {url} through $http_proxy, {via} proxy or connect" },
};

static void handle(const char *line) {
    const char *id = find_key(line, "id");
    char *method = read_string(find_key(line, "method"));
    if (!method) { free(method); return; }
    if (!id) { free(method); return; }  /* a notification: nothing to answer */
    const char *id_end = skip_value(id);
    struct buf b = { 0 };
    puts_(&b, "{\"jsonrpc\":\"2.0\",\"id\":");
    put(&b, id, id_end ? (size_t)(id_end - id) : 4);
    const char *params = find_key(line, "params");
    if (!strcmp(method, "initialize")) {
        char *version = read_string(find_key(params, "protocolVersion"));
        puts_(&b, ",\"result\":{\"protocolVersion\":");
        put_json_string(&b, version ? version : "2025-06-18", strlen(version ? version : "2025-06-18"));
        puts_(&b, ",\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"mcpproxy-probe\",\"version\":\"1.0\"}}}");
        free(version);
    } else if (!strcmp(method, "ping")) {
        puts_(&b, ",\"result\":{}}");
    } else if (!strcmp(method, "tools/list")) {
        puts_(&b, ",\"result\":{\"tools\":[");
        for (size_t i = 0; i < sizeof TOOLS / sizeof TOOLS[0]; i++) {
            putf(&b, "%s{\"name\":\"%s\",\"description\":\"%s\",\"inputSchema\":{\"type\":\"object\"}}",
                 i ? "," : "", TOOLS[i][0], TOOLS[i][1]);
        }
        puts_(&b, "]}}");
    } else if (!strcmp(method, "tools/call")) {
        char *name = read_string(find_key(params, "name"));
        const char *args = find_key(params, "arguments");
        char *path = read_string(find_key(args, "path"));
        struct buf r = { 0 };
        puts_(&r, "{");
        if (!name) puts_(&r, "\"ok\":false,\"error\":\"no tool name\"");
        else if (!strcmp(name, "ids")) tool_ids(&r);
        else if (!strcmp(name, "env")) tool_env(&r);
        else if (!strcmp(name, "cwd")) tool_cwd(&r);
        else if (!strcmp(name, "rlimits")) tool_rlimits(&r);
        else if (!strcmp(name, "echo")) {
            char *t = read_string(find_key(args, "text"));
            puts_(&r, "\"ok\":true,\"text\":");
            put_json_string(&r, t ? t : "", t ? strlen(t) : 0);
            free(t);
        }
        else if (!strcmp(name, "read_file")) tool_read_file(&r, path ? path : "");
        else if (!strcmp(name, "write_file")) {
            char *t = read_string(find_key(args, "text"));
            tool_write_file(&r, path ? path : "", t ? t : "");
            free(t);
        }
        else if (!strcmp(name, "list_dir")) tool_list_dir(&r, path ? path : "");
        else if (!strcmp(name, "tcp_connect")) {
            char *host = read_string(find_key(args, "host"));
            tool_tcp_connect(&r, host, read_int(find_key(args, "port"), 0));
            free(host);
        }
        else if (!strcmp(name, "http_get")) {
            char *url = read_string(find_key(args, "url"));
            char *via = read_string(find_key(args, "via"));
            tool_http_get(&r, url ? url : "", via);
            free(url);
            free(via);
        }
        else if (!strcmp(name, "unix_connect")) {
            char *n = read_string(find_key(args, "name"));
            tool_unix_connect(&r, n ? n : "");
            free(n);
        }
        else if (!strcmp(name, "fork_bomb")) tool_fork_bomb(&r, read_int(find_key(args, "count"), 1000));
        else if (!strcmp(name, "memory_bomb")) tool_memory_bomb(&r, read_int(find_key(args, "mb"), 1024));
        else if (!strcmp(name, "kill")) tool_kill(&r, read_int(find_key(args, "pid"), 0), read_int(find_key(args, "signal"), 0));
        else if (!strcmp(name, "ptrace")) tool_ptrace(&r, read_int(find_key(args, "pid"), 0));
        else if (!strcmp(name, "exec")) tool_exec(&r, path ? path : "", find_key(args, "args"));
        else if (!strcmp(name, "unshare")) tool_unshare(&r);
        else if (!strcmp(name, "mount")) tool_mount(&r);
        else if (!strcmp(name, "unix_path_connect")) tool_unix_path_connect(&r, path ? path : "");
        else if (!strcmp(name, "fork_hold")) tool_fork_hold(&r, read_int(find_key(args, "count"), 1000));
        else if (!strcmp(name, "memory_bomb_procs")) tool_memory_bomb_procs(&r, read_int(find_key(args, "procs"), 3), read_int(find_key(args, "mb"), 1024));
        else if (!strcmp(name, "fill_disk")) tool_fill_disk(&r, path ? path : "", read_int(find_key(args, "mb"), 1024));
        else { puts_(&r, "\"ok\":false,\"error\":\"unknown tool\""); }
        puts_(&r, "}");
        puts_(&b, ",\"result\":{\"content\":[{\"type\":\"text\",\"text\":");
        put_json_string(&b, r.p, r.len);
        puts_(&b, "}],\"structuredContent\":");
        put(&b, r.p, r.len);
        puts_(&b, ",\"isError\":false}}");
        free(r.p);
        free(name);
        free(path);
    } else {
        puts_(&b, ",\"error\":{\"code\":-32601,\"message\":\"method not found\"}}");
    }
    send_line(&b);
    free(b.p);
    free(method);
}

// No Swift code here: satisfy the swiftrt.o the Swift driver links in, so no Swift runtime is
// loaded and the probe runs under a Landlock allowlist without the toolchain's library dir.
void swift_addNewDSOImage(const void *sections) { (void)sections; }
int _swift_backtrace_isThunkFunction(const char *name) { (void)name; return 0; }

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n') line[n - 1] = 0;
        if (line[0]) handle(line);
    }
    free(line);
    return 0;
}

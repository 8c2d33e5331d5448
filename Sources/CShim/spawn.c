// Process spawning for upstream servers. Written in C because the work between fork and exec
// (setsid, prctl, signal reset, dup2, closing fds) must not run Swift code, and because
// PR_SET_PDEATHSIG needs a thread that outlives every child: Swift's and NIO's thread pools give
// no such guarantee.
#define _GNU_SOURCE
#include "cshim.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sched.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

typedef struct {
    const char *file;
    char *const *argv;
    char *const *envp;
    const char *cwd;
    int own_pidns;
    mcpx_spawn_result *out;
    int result;
    int done;
} spawn_request;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_req = PTHREAD_COND_INITIALIZER;
static pthread_cond_t cv_done = PTHREAD_COND_INITIALIZER;
static spawn_request *pending = NULL;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const char *env_lookup(char *const envp[], const char *name) {
    size_t n = strlen(name);
    for (char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    }
    return NULL;
}

static void child_fail(int errpipe, int err) {
    ssize_t r;
    do { r = write(errpipe, &err, sizeof err); } while (r < 0 && errno == EINTR);
    _exit(127);
}

static void close_from(int lowfd, int keep) {
#ifdef SYS_close_range
    if (keep > lowfd) syscall(SYS_close_range, lowfd, keep - 1, 0);
    if (syscall(SYS_close_range, (keep >= lowfd ? keep : lowfd - 1) + 1, ~0U, 0) == 0) return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = lowfd; fd < max; fd++) if (fd != keep) close(fd);
}

static int do_spawn(spawn_request *r) {
    int in[2], out[2], err[2], ep[2];
    if (pipe2(in, O_CLOEXEC) < 0) return errno;
    if (pipe2(out, O_CLOEXEC) < 0) { int e = errno; close(in[0]); close(in[1]); return e; }
    if (pipe2(err, O_CLOEXEC) < 0) { int e = errno; close(in[0]); close(in[1]); close(out[0]); close(out[1]); return e; }
    if (pipe2(ep, O_CLOEXEC) < 0) {
        int e = errno; close(in[0]); close(in[1]); close(out[0]); close(out[1]); close(err[0]); close(err[1]); return e;
    }
    pid_t parent = getpid();
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    // As root, the child starts a PID namespace of its own, so it is PID 1 there: when it dies
    // (the parent-death signal below, or any other way) the kernel kills every process it left
    // in that namespace, grandchildren included. Unprivileged, or when the request opts out (a
    // client that manages processes by their host pids, such as podman), a plain fork.
    int in_pidns = 0;
    pid_t pid = -1;
#ifdef __linux__
    if (geteuid() == 0 && r->own_pidns) {
        pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
        if (pid >= 0) in_pidns = 1;
    }
#endif
    if (!in_pidns) pid = fork();
    if (pid == 0) {
        // Child: only async-signal-safe calls from here to exec.
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        // The parent died before prctl took effect? (In a new PID namespace getppid() is 0.)
        if (!in_pidns && getppid() != parent) _exit(127);
#endif
        setsid();
        for (int s = 1; s < NSIG; s++) {
            if (s == SIGKILL || s == SIGSTOP) continue;
            signal(s, SIG_DFL);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) child_fail(ep[1], errno);
        close_from(3, ep[1]);
        if (r->cwd && chdir(r->cwd) < 0) child_fail(ep[1], errno);
        if (strchr(r->file, '/')) {
            execve(r->file, r->argv, r->envp);
            child_fail(ep[1], errno);
        }
        const char *path = env_lookup(r->envp, "PATH");
        if (!path) path = "/usr/local/bin:/usr/bin:/bin";
        int saved = ENOENT;
        char buf[PATH_MAX];
        const char *p = path;
        while (*p) {
            const char *colon = strchr(p, ':');
            size_t len = colon ? (size_t)(colon - p) : strlen(p);
            size_t flen = strlen(r->file);
            if (len == 0) { buf[0] = '.'; len = 1; } else if (len < sizeof buf) memcpy(buf, p, len);
            if (len + 1 + flen + 1 <= sizeof buf) {
                buf[len] = '/';
                memcpy(buf + len + 1, r->file, flen + 1);
                execve(buf, r->argv, r->envp);
                if (errno != ENOENT && errno != ENOTDIR) saved = errno;
            }
            if (!colon) break;
            p = colon + 1;
        }
        child_fail(ep[1], saved);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(in[0]); close(out[1]); close(err[1]); close(ep[1]);
    if (pid < 0) {
        close(in[1]); close(out[0]); close(err[0]); close(ep[0]);
        return fork_errno;
    }
    int child_errno = 0;
    ssize_t n;
    do { n = read(ep[0], &child_errno, sizeof child_errno); } while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof child_errno) {
        int st;
        waitpid(pid, &st, 0);
        close(in[1]); close(out[0]); close(err[0]);
        return child_errno ? child_errno : ECHILD;
    }
    r->out->pid = pid;
    r->out->stdin_fd = in[1];
    r->out->stdout_fd = out[0];
    r->out->stderr_fd = err[0];
    return 0;
}

static void *spawner_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!pending) pthread_cond_wait(&cv_req, &mu);
        spawn_request *r = pending;
        pending = NULL;
        pthread_mutex_unlock(&mu);
        int res = do_spawn(r);
        pthread_mutex_lock(&mu);
        r->result = res;
        r->done = 1;
        pthread_cond_broadcast(&cv_done);
    }
    return NULL;
}

static void start_spawner(void) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_create(&t, &attr, spawner_main, NULL);
    pthread_attr_destroy(&attr);
}

int mcpx_spawn(const char *file, char *const argv[], char *const envp[], const char *cwd,
               int own_pidns, mcpx_spawn_result *out) {
    pthread_once(&once, start_spawner);
    spawn_request r = { file, argv, envp, cwd, own_pidns, out, 0, 0 };
    pthread_mutex_lock(&mu);
    while (pending) pthread_cond_wait(&cv_done, &mu);  // one request slot
    pending = &r;
    pthread_cond_broadcast(&cv_req);
    while (!r.done) pthread_cond_wait(&cv_done, &mu);
    pthread_cond_broadcast(&cv_done);
    pthread_mutex_unlock(&mu);
    return r.result;
}

int mcpx_wait(pid_t pid) {
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, 0);
        if (r == pid) return st;
        if (r < 0 && errno == EINTR) continue;
        return -errno;
    }
}

int mcpx_pidfd_open(pid_t pid) {
#if defined(__linux__) && defined(SYS_pidfd_open)
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    return fd >= 0 ? fd : -errno;
#else
    (void)pid;
    return -ENOSYS;
#endif
}

int mcpx_wifexited(int s) { return WIFEXITED(s); }
int mcpx_wexitstatus(int s) { return WEXITSTATUS(s); }
int mcpx_wifsignaled(int s) { return WIFSIGNALED(s); }
int mcpx_wtermsig(int s) { return WTERMSIG(s); }
int mcpx_killpg(pid_t pgid, int sig) { return killpg(pgid, sig) == 0 ? 0 : errno; }
int mcpx_set_nonblocking(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return errno;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 ? 0 : errno;
}

#if defined(__GLIBC__)
#include <malloc.h>
void mcpx_malloc_trim(void) { malloc_trim(0); }
#else
void mcpx_malloc_trim(void) {}
#endif

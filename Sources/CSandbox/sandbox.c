// The sandbox launcher: confines itself, then execs the MCP server (see csandbox.h).
//
// Order matters and is chosen so every privileged step runs before the privilege is given up:
//   1. parse the policy (argv before "--"); nothing is applied before the whole policy parses;
//      take the server's environment out of the launcher's own (see below)
//   2. new session (the proxy tears the whole tree down by process group)
//   3. create missing private dirs (a new dir goes to the sandbox uid; an existing one is never
//      chowned or chmodded), a private mount namespace with size-capped tmpfs homes and hidden
//      socket dirs (root only), cgroup limits, network namespace
//   4. rlimits; open the Landlock rule paths (still as root, so root-only dirs can be named)
//   5. drop to the sandbox uid/gid; PR_SET_NO_NEW_PRIVS
//   6. landlock_restrict_self, then the seccomp filter (which also blocks what step 3 used)
//   7. close inherited descriptors above 2, chdir, print one status line to stderr, execve with
//      the server's environment
//
// The environment: the proxy starts the launcher with only MCPX_SANDBOX_ENV_PREFIX-prefixed
// variables, which neither the dynamic loader nor libc read, so a declared LD_PRELOAD,
// GCONV_PATH or MALLOC_* cannot act inside the launcher while it is still privileged. The
// launcher is also linked statically where the toolchain allows it. The prefix is stripped and
// the result handed to the server only by the final execve, after every confinement step.
// The launcher is single-threaded C: Landlock and seccomp bind the calling thread, and here the
// calling thread is the only thread, so nothing escapes confinement by running elsewhere.
#define _GNU_SOURCE
#include "csandbox.h"

#ifdef __linux__

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

// ---- Landlock declarations (the system header is the old ABI-2 one) ----------------------------

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

#define MCPX_LL_CREATE_RULESET_VERSION (1U << 0)
#define MCPX_LL_RULE_PATH_BENEATH 1
#define MCPX_LL_RULE_NET_PORT 2

#define MCPX_LL_FS_EXECUTE (1ULL << 0)
#define MCPX_LL_FS_WRITE_FILE (1ULL << 1)
#define MCPX_LL_FS_READ_FILE (1ULL << 2)
#define MCPX_LL_FS_READ_DIR (1ULL << 3)
#define MCPX_LL_FS_REMOVE_DIR (1ULL << 4)
#define MCPX_LL_FS_REMOVE_FILE (1ULL << 5)
#define MCPX_LL_FS_MAKE_CHAR (1ULL << 6)
#define MCPX_LL_FS_MAKE_DIR (1ULL << 7)
#define MCPX_LL_FS_MAKE_REG (1ULL << 8)
#define MCPX_LL_FS_MAKE_SOCK (1ULL << 9)
#define MCPX_LL_FS_MAKE_FIFO (1ULL << 10)
#define MCPX_LL_FS_MAKE_BLOCK (1ULL << 11)
#define MCPX_LL_FS_MAKE_SYM (1ULL << 12)
#define MCPX_LL_FS_REFER (1ULL << 13)      /* ABI 2 */
#define MCPX_LL_FS_TRUNCATE (1ULL << 14)   /* ABI 3 */
#define MCPX_LL_FS_IOCTL_DEV (1ULL << 15)  /* ABI 5 */

#define MCPX_LL_NET_BIND_TCP (1ULL << 0)     /* ABI 4 */
#define MCPX_LL_NET_CONNECT_TCP (1ULL << 1)  /* ABI 4 */

#define MCPX_LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define MCPX_LL_SCOPE_SIGNAL (1ULL << 1)        /* ABI 6 */

struct mcpx_ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct mcpx_ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

struct mcpx_ll_net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
};

/* Rights that Landlock accepts on a rule for a non-directory. */
#define MCPX_LL_FILE_RIGHTS (MCPX_LL_FS_EXECUTE | MCPX_LL_FS_WRITE_FILE | MCPX_LL_FS_READ_FILE | \
                             MCPX_LL_FS_TRUNCATE | MCPX_LL_FS_IOCTL_DEV)
#define MCPX_LL_READ_EXEC (MCPX_LL_FS_EXECUTE | MCPX_LL_FS_READ_FILE | MCPX_LL_FS_READ_DIR)
#define MCPX_LL_READ_ONLY (MCPX_LL_FS_READ_FILE | MCPX_LL_FS_READ_DIR)

static uint64_t mcpx_fs_rights_for_abi(int abi) {
    if (abi <= 0) return 0;
    uint64_t r = (MCPX_LL_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */
    if (abi >= 2) r |= MCPX_LL_FS_REFER;
    if (abi >= 3) r |= MCPX_LL_FS_TRUNCATE;
    if (abi >= 5) r |= MCPX_LL_FS_IOCTL_DEV;
    return r;
}

int mcpx_landlock_abi(void) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, MCPX_LL_CREATE_RULESET_VERSION);
    return abi < 0 ? 0 : (int)abi;
}


// ---- policy --------------------------------------------------------------------------------------

enum mcpx_access { MCPX_RO, MCPX_RX, MCPX_RW, MCPX_DEV };

struct mcpx_rule { const char *path; enum mcpx_access access; };

#define MCPX_MAX_RULES 512
#define MCPX_MAX_PORTS 64
#define MCPX_MAX_DIRS 16

struct mcpx_policy {
    const char *name;
    struct mcpx_rule rules[MCPX_MAX_RULES];
    int nrules;
    const char *mkdirs[MCPX_MAX_DIRS];
    int nmkdirs;
    const char *chdir_to;
    long uid, gid;           /* -1: keep */
    int net_none;
    const char *net_path;    /* --net netns:PATH: join this network namespace (egress) */
    long ports[MCPX_MAX_PORTS];
    int nports;
    int tcp_allowlist;       /* --tcp-connect or --tcp-connect-none given: connect only to ports */
    long long rl_as, rl_data, rl_nofile, rl_nproc, rl_cpu, rl_fsize; /* -1: unset */
    long long cg_memory;     /* bytes, -1: unset */
    double cg_cpus;          /* 0: unset */
    const char *cg_name;
    int allow_degraded;
    const char *cg_leaf;     /* cgroup leaf name (default: the sanitized server name) */
    long long cg_pids;       /* pids.max, -1: unset */
    int cg_optional;         /* default limits: a missing cgroup is noted, not a degradation */
    struct { const char *path; long long bytes; } tmpfs[MCPX_MAX_DIRS];
    int ntmpfs;
    const char *hide[MCPX_MAX_DIRS];
    int nhide;
    int deny_unix;           /* seccomp: socket(AF_UNIX) fails with EACCES */
    char **command;          /* argv after "--" */
};

// ---- status reporting ----------------------------------------------------------------------------

struct mcpx_report {
    char on[2048];
    char off[2048];
    int degraded;            /* something the policy asked for is not enforced */
};

static void mcpx_add(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void mcpx_add(char *buf, size_t cap, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len + 3 >= cap) return;
    if (len > 0) { buf[len++] = ','; buf[len++] = ' '; buf[len] = 0; }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}
#define ON(...) mcpx_add(rep->on, sizeof rep->on, __VA_ARGS__)
#define OFF(...) do { mcpx_add(rep->off, sizeof rep->off, __VA_ARGS__); rep->degraded = 1; } while (0)
#define NOTE(...) mcpx_add(rep->off, sizeof rep->off, __VA_ARGS__)

static const char *g_name = "";

static void mcpx_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void mcpx_err(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_name[0]) fprintf(stderr, "mcpproxy-sandbox: server \"%s\": %s\n", g_name, msg);
    else fprintf(stderr, "mcpproxy-sandbox: %s\n", msg);
}

static void mcpx_usage(void) {
    fprintf(stderr,
        "usage: mcpproxy-sandbox [policy options] -- COMMAND [ARGS...]\n"
        "  --name NAME            server name (messages, cgroup name)\n"
        "  --ro PATH | --rx PATH  read (and execute) beneath PATH\n"
        "  --rw PATH              read, write, execute, create and remove beneath PATH\n"
        "  --dev PATH             read and write a device file (e.g. /dev/null)\n"
        "  --mkdir PATH           create PATH (0700) if missing and give it to the sandbox uid\n"
        "  --chdir PATH           working directory of the server\n"
        "  --uid N --gid N        drop to this uid/gid (when running as root)\n"
        "  --net none|host        none: fresh network namespace (Landlock TCP deny as fallback)\n"
        "  --net netns:PATH       join the network namespace PATH (egress; failing to is fatal)\n"
        "  --tcp-connect PORT     allow TCP connect to PORT (others denied; Landlock ABI >= 4)\n"
        "  --tcp-connect-none     an empty TCP connect allowlist (every connect denied)\n"
        "  --rlimit KIND=N        as, data, nofile, nproc, cpu, fsize (core is always 0)\n"
        "  --cgroup-memory BYTES  memory cgroup limit (falls back to RLIMIT_AS)\n"
        "  --cgroup-cpus CPUS     CPU bandwidth limit, e.g. 0.5\n"
        "  --cgroup-pids N        pids.max of the server's cgroup\n"
        "  --cgroup LEAF          cgroup leaf name (default: the server name)\n"
        "  --cgroup-optional      the cgroup limits are defaults: without a writable cgroup, note it only\n"
        "  --tmpfs PATH=BYTES     mount a private tmpfs of at most BYTES on PATH (root: mount namespace)\n"
        "  --hide PATH            mount an empty read-only tmpfs over PATH (root: mount namespace)\n"
        "  --deny-unix            socket(AF_UNIX) fails (pathname unix sockets stay unreachable)\n"
        "  --allow-degraded       start even when the kernel cannot enforce all of the policy\n"
        "The server's environment is read from the launcher's " MCPX_SANDBOX_ENV_PREFIX "NAME=VALUE variables.\n");
}

static int mcpx_parse_ll(const char *s, long long *out) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !end || *end || v < 0) return -1;
    *out = v;
    return 0;
}

static int mcpx_parse(int argc, char **argv, struct mcpx_policy *p) {
    memset(p, 0, sizeof *p);
    p->name = "";
    p->uid = p->gid = -1;
    p->rl_as = p->rl_data = p->rl_nofile = p->rl_nproc = p->rl_cpu = p->rl_fsize = -1;
    p->cg_memory = -1;
    p->cg_pids = -1;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) { i++; break; }
        if (strcmp(a, "--allow-degraded") == 0) { p->allow_degraded = 1; continue; }
        if (strcmp(a, "--cgroup-optional") == 0) { p->cg_optional = 1; continue; }
        if (strcmp(a, "--deny-unix") == 0) { p->deny_unix = 1; continue; }
        if (strcmp(a, "--tcp-connect-none") == 0) { p->tcp_allowlist = 1; continue; }
        if (strcmp(a, "--help") == 0) { mcpx_usage(); return -1; }
        if (i + 1 >= argc) { mcpx_err("option %s needs a value", a); return -1; }
        const char *v = argv[++i];
        if (strcmp(a, "--name") == 0) { p->name = v; g_name = v; }
        else if (!strcmp(a, "--ro") || !strcmp(a, "--rx") || !strcmp(a, "--rw") || !strcmp(a, "--dev")) {
            if (v[0] != '/') { mcpx_err("%s %s: paths must be absolute", a, v); return -1; }
            if (p->nrules >= MCPX_MAX_RULES) { mcpx_err("too many path rules (max %d)", MCPX_MAX_RULES); return -1; }
            enum mcpx_access acc = !strcmp(a, "--ro") ? MCPX_RO : !strcmp(a, "--rx") ? MCPX_RX
                                 : !strcmp(a, "--rw") ? MCPX_RW : MCPX_DEV;
            p->rules[p->nrules++] = (struct mcpx_rule){ v, acc };
        }
        else if (strcmp(a, "--mkdir") == 0) {
            if (v[0] != '/') { mcpx_err("--mkdir %s: paths must be absolute", v); return -1; }
            if (p->nmkdirs >= MCPX_MAX_DIRS) { mcpx_err("too many --mkdir (max %d)", MCPX_MAX_DIRS); return -1; }
            p->mkdirs[p->nmkdirs++] = v;
        }
        else if (strcmp(a, "--chdir") == 0) p->chdir_to = v;
        else if (strcmp(a, "--uid") == 0 || strcmp(a, "--gid") == 0) {
            long long n;
            if (mcpx_parse_ll(v, &n) || n > 0x7fffffff) { mcpx_err("%s %s: expected a number", a, v); return -1; }
            if (a[2] == 'u') p->uid = (long)n; else p->gid = (long)n;
        }
        else if (strcmp(a, "--net") == 0) {
            if (!strcmp(v, "none")) { p->net_none = 1; p->net_path = NULL; }
            else if (!strcmp(v, "host")) { p->net_none = 0; p->net_path = NULL; }
            else if (!strncmp(v, "netns:", 6) && v[6] == '/') { p->net_none = 0; p->net_path = v + 6; }
            else { mcpx_err("--net %s: expected none, host or netns:/PATH", v); return -1; }
        }
        else if (strcmp(a, "--tcp-connect") == 0) {
            long long n;
            if (mcpx_parse_ll(v, &n) || n < 1 || n > 65535) { mcpx_err("--tcp-connect %s: expected a port 1-65535", v); return -1; }
            if (p->nports >= MCPX_MAX_PORTS) { mcpx_err("too many --tcp-connect ports (max %d)", MCPX_MAX_PORTS); return -1; }
            p->ports[p->nports++] = (long)n;
            p->tcp_allowlist = 1;
        }
        else if (strcmp(a, "--rlimit") == 0) {
            const char *eq = strchr(v, '=');
            long long n;
            if (!eq || mcpx_parse_ll(eq + 1, &n)) { mcpx_err("--rlimit %s: expected KIND=NUMBER", v); return -1; }
            size_t k = (size_t)(eq - v);
            if (k == 2 && !strncmp(v, "as", 2)) p->rl_as = n;
            else if (k == 4 && !strncmp(v, "data", 4)) p->rl_data = n;
            else if (k == 6 && !strncmp(v, "nofile", 6)) p->rl_nofile = n;
            else if (k == 5 && !strncmp(v, "nproc", 5)) p->rl_nproc = n;
            else if (k == 3 && !strncmp(v, "cpu", 3)) p->rl_cpu = n;
            else if (k == 5 && !strncmp(v, "fsize", 5)) p->rl_fsize = n;
            else { mcpx_err("--rlimit %s: unknown kind (as, data, nofile, nproc, cpu, fsize)", v); return -1; }
        }
        else if (strcmp(a, "--cgroup-memory") == 0) {
            if (mcpx_parse_ll(v, &p->cg_memory) || p->cg_memory == 0) { mcpx_err("--cgroup-memory %s: expected bytes", v); return -1; }
        }
        else if (strcmp(a, "--cgroup-cpus") == 0) {
            char *end = NULL;
            p->cg_cpus = strtod(v, &end);
            if (!end || *end || !(p->cg_cpus > 0)) { mcpx_err("--cgroup-cpus %s: expected a positive number", v); return -1; }
        }
        else if (strcmp(a, "--cgroup-pids") == 0) {
            if (mcpx_parse_ll(v, &p->cg_pids) || p->cg_pids == 0) { mcpx_err("--cgroup-pids %s: expected a count", v); return -1; }
        }
        else if (strcmp(a, "--cgroup") == 0) {
            if (!v[0] || strchr(v, '/') || !strcmp(v, ".") || !strcmp(v, "..")) { mcpx_err("--cgroup %s: expected a leaf name", v); return -1; }
            p->cg_leaf = v;
        }
        else if (strcmp(a, "--tmpfs") == 0) {
            const char *eq = strrchr(v, '=');
            long long n;
            if (v[0] != '/' || !eq || mcpx_parse_ll(eq + 1, &n) || n < 4096) { mcpx_err("--tmpfs %s: expected /PATH=BYTES", v); return -1; }
            if (p->ntmpfs >= MCPX_MAX_DIRS) { mcpx_err("too many --tmpfs (max %d)", MCPX_MAX_DIRS); return -1; }
            char *path = strndup(v, (size_t)(eq - v));
            p->tmpfs[p->ntmpfs].path = path;
            p->tmpfs[p->ntmpfs++].bytes = n;
        }
        else if (strcmp(a, "--hide") == 0) {
            if (v[0] != '/' || !strcmp(v, "/")) { mcpx_err("--hide %s: expected an absolute directory other than /", v); return -1; }
            if (p->nhide >= MCPX_MAX_DIRS) { mcpx_err("too many --hide (max %d)", MCPX_MAX_DIRS); return -1; }
            p->hide[p->nhide++] = v;
        }
        else { mcpx_err("unknown option %s (see --help)", a); return -1; }
    }
    if (i >= argc) { mcpx_err("no command after \"--\""); return -1; }
    p->command = argv + i;
    if ((p->uid < 0) != (p->gid < 0)) { mcpx_err("--uid and --gid go together"); return -1; }
    return 0;
}

// ---- steps ---------------------------------------------------------------------------------------

static int mcpx_write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int saved = errno;
    close(fd);
    errno = saved;
    return w == (ssize_t)n ? 0 : -1;
}

static int mcpx_mkdir_p(const char *path, mode_t mode) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    strcpy(buf, path);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST) return -1;
    return 0;
}

/* The sandbox's own dirs: a dir this call creates is made 0700 and given to the sandbox uid. An
   existing dir is never chowned or chmodded (a configured working_dir may be anyone's, even a
   system dir the planner failed to refuse): it is used as it is, writable only if its owner
   already let the sandbox uid write there. */
static int mcpx_make_private_dirs(const struct mcpx_policy *p, struct mcpx_report *rep) {
    int dropping = p->uid >= 0 && geteuid() == 0;
    for (int i = 0; i < p->nmkdirs; i++) {
        const char *d = p->mkdirs[i];
        struct stat st;
        int existed = stat(d, &st) == 0;
        if (!existed && mcpx_mkdir_p(d, 0700) < 0) {
            mcpx_err("cannot create directory %s: %s", d, strerror(errno));
            return -1;
        }
        if (stat(d, &st) < 0 || !S_ISDIR(st.st_mode)) { mcpx_err("%s is not a directory", d); return -1; }
        if (!existed && dropping) {
            /* lchown: the dir was just made by this process; never follow a link planted since. */
            if (lchown(d, (uid_t)p->uid, (gid_t)p->gid) < 0) {
                mcpx_err("cannot give new directory %s to uid %ld: %s", d, p->uid, strerror(errno));
                return -1;
            }
        }
    }
    (void)rep;
    return 0;
}

/* A private mount namespace (root only): size-capped tmpfs on the private dirs, empty read-only
   tmpfs over socket-holding dirs. Nothing propagates back to the host (MS_PRIVATE first). */
static int mcpx_apply_mounts(const struct mcpx_policy *p, struct mcpx_report *rep) {
    if (p->ntmpfs == 0 && p->nhide == 0) return 0;
    if (geteuid() != 0) {
        for (int i = 0; i < p->ntmpfs; i++) NOTE("tmpfs %s (launcher is not root; RLIMIT_FSIZE only)", p->tmpfs[i].path);
        for (int i = 0; i < p->nhide; i++) OFF("pathname unix sockets under %s (no mount namespace: launcher is not root)", p->hide[i]);
        return 0;
    }
    if (unshare(CLONE_NEWNS) < 0) { mcpx_err("unshare(CLONE_NEWNS): %s", strerror(errno)); return -1; }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) { mcpx_err("making / private: %s", strerror(errno)); return -1; }
    char opts[256];
    for (int i = 0; i < p->ntmpfs; i++) {
        if (p->uid >= 0) snprintf(opts, sizeof opts, "size=%lld,mode=0700,uid=%ld,gid=%ld", p->tmpfs[i].bytes, p->uid, p->gid);
        else snprintf(opts, sizeof opts, "size=%lld,mode=0700", p->tmpfs[i].bytes);
        if (mount("mcpproxy-home", p->tmpfs[i].path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
            mcpx_err("mounting a tmpfs on %s: %s", p->tmpfs[i].path, strerror(errno)); return -1;
        }
        ON("tmpfs %s size=%lld", p->tmpfs[i].path, p->tmpfs[i].bytes);
    }
    for (int i = 0; i < p->nhide; i++) {
        struct stat st;
        if (lstat(p->hide[i], &st) < 0 || !S_ISDIR(st.st_mode)) continue;  /* absent or a symlink: the planner hides its target */
        if (mount("mcpproxy-hidden", p->hide[i], "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4096,mode=0555") < 0) {
            mcpx_err("hiding %s: %s", p->hide[i], strerror(errno)); return -1;
        }
        ON("hidden %s", p->hide[i]);
    }
    return 0;
}

static void mcpx_sanitize(const char *in, char *out, size_t cap) {
    size_t j = 0;
    for (size_t i = 0; in[i] && j + 1 < cap; i++) {
        char c = in[i];
        out[j++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.') && !(i == 0 && c == '.') ? c : '_';
    }
    out[j] = 0;
    if (j == 0 && cap > 7) strcpy(out, "server");
}

/* Puts this process into a per-server cgroup with the requested limits. Returns 1 on success. */
static int mcpx_cgroup_v2(const struct mcpx_policy *p, const char *leaf, char *why, size_t whycap) {
    char base[512], dir[1024], val[128], pid[32];
    snprintf(base, sizeof base, "/sys/fs/cgroup/mcpproxy");
    snprintf(dir, sizeof dir, "%s/%s", base, leaf);
    snprintf(pid, sizeof pid, "%d", getpid());
    char ctl[64] = "";
    if (p->cg_memory > 0) strcat(ctl, "+memory ");
    if (p->cg_cpus > 0) strcat(ctl, "+cpu ");
    if (p->cg_pids > 0) strcat(ctl, "+pids ");
    if (ctl[0]) ctl[strlen(ctl) - 1] = 0;
    if (mkdir(base, 0755) < 0 && errno != EEXIST) { snprintf(why, whycap, "mkdir %s: %s", base, strerror(errno)); return 0; }
    if (mcpx_write_file("/sys/fs/cgroup/cgroup.subtree_control", ctl) < 0 ||
        mcpx_write_file("/sys/fs/cgroup/mcpproxy/cgroup.subtree_control", ctl) < 0) {
        snprintf(why, whycap, "enable controllers: %s", strerror(errno)); return 0;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) { snprintf(why, whycap, "mkdir %s: %s", dir, strerror(errno)); return 0; }
    char file[1200];
    if (p->cg_memory > 0) {
        snprintf(file, sizeof file, "%s/memory.max", dir);
        snprintf(val, sizeof val, "%lld", p->cg_memory);
        if (mcpx_write_file(file, val) < 0) { snprintf(why, whycap, "%s: %s", file, strerror(errno)); return 0; }
        snprintf(file, sizeof file, "%s/memory.swap.max", dir);
        (void)mcpx_write_file(file, "0");
    }
    if (p->cg_cpus > 0) {
        snprintf(file, sizeof file, "%s/cpu.max", dir);
        snprintf(val, sizeof val, "%lld 100000", (long long)(p->cg_cpus * 100000.0));
        if (mcpx_write_file(file, val) < 0) { snprintf(why, whycap, "%s: %s", file, strerror(errno)); return 0; }
    }
    if (p->cg_pids > 0) {
        snprintf(file, sizeof file, "%s/pids.max", dir);
        snprintf(val, sizeof val, "%lld", p->cg_pids);
        if (mcpx_write_file(file, val) < 0) { snprintf(why, whycap, "%s: %s", file, strerror(errno)); return 0; }
    }
    snprintf(file, sizeof file, "%s/cgroup.procs", dir);
    if (mcpx_write_file(file, pid) < 0) { snprintf(why, whycap, "%s: %s", file, strerror(errno)); return 0; }
    return 1;
}

static int mcpx_cgroup_v1(const char *controller, const char *leaf, const char *const *files,
                          const char *const *values, int n, char *why, size_t whycap) {
    char root[256], base[512], dir[1024], file[1200], pid[32];
    snprintf(root, sizeof root, "/sys/fs/cgroup/%s", controller);
    struct stat st;
    if (stat(root, &st) < 0) { snprintf(why, whycap, "no %s cgroup hierarchy", controller); return 0; }
    snprintf(base, sizeof base, "%s/mcpproxy", root);
    snprintf(dir, sizeof dir, "%s/%s", base, leaf);
    if ((mkdir(base, 0755) < 0 && errno != EEXIST) || (mkdir(dir, 0755) < 0 && errno != EEXIST)) {
        snprintf(why, whycap, "mkdir %s: %s", dir, strerror(errno)); return 0;
    }
    for (int i = 0; i < n; i++) {
        snprintf(file, sizeof file, "%s/%s", dir, files[i]);
        if (mcpx_write_file(file, values[i]) < 0) { snprintf(why, whycap, "%s: %s", file, strerror(errno)); return 0; }
    }
    snprintf(file, sizeof file, "%s/cgroup.procs", dir);
    snprintf(pid, sizeof pid, "%d", getpid());
    if (mcpx_write_file(file, pid) < 0) { snprintf(why, whycap, "%s: %s", file, strerror(errno)); return 0; }
    return 1;
}

static void mcpx_apply_cgroups(struct mcpx_policy *p, struct mcpx_report *rep) {
    if (p->cg_memory <= 0 && p->cg_cpus <= 0 && p->cg_pids <= 0) return;
    char leaf[256], why[1400] = "";
    mcpx_sanitize(p->cg_leaf ? p->cg_leaf : p->name[0] ? p->name : "server", leaf, sizeof leaf);
    struct stat st;
    int v2 = stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
    if (v2) {
        if (mcpx_cgroup_v2(p, leaf, why, sizeof why)) {
            if (p->cg_memory > 0) ON("cgroup memory.max=%lld", p->cg_memory);
            if (p->cg_cpus > 0) ON("cgroup cpu.max=%.2f cpus", p->cg_cpus);
            if (p->cg_pids > 0) ON("cgroup pids.max=%lld", p->cg_pids);
            return;
        }
    } else {
        if (p->cg_memory > 0) {
            char mem[64];
            snprintf(mem, sizeof mem, "%lld", p->cg_memory);
            const char *files[] = { "memory.limit_in_bytes" };
            const char *values[] = { mem };
            if (mcpx_cgroup_v1("memory", leaf, files, values, 1, why, sizeof why)) {
                /* No swap escape hatch where the kernel accounts swap (memsw); absent is fine. */
                char memsw[1200];
                snprintf(memsw, sizeof memsw, "/sys/fs/cgroup/memory/mcpproxy/%s/memory.memsw.limit_in_bytes", leaf);
                (void)mcpx_write_file(memsw, mem);
                ON("cgroup memory.limit_in_bytes=%lld", p->cg_memory);
                p->cg_memory = 0;
            }
        }
        if (p->cg_cpus > 0) {
            char quota[64];
            snprintf(quota, sizeof quota, "%lld", (long long)(p->cg_cpus * 100000.0));
            const char *files[] = { "cpu.cfs_period_us", "cpu.cfs_quota_us" };
            const char *values[] = { "100000", quota };
            if (mcpx_cgroup_v1("cpu", leaf, files, values, 2, why, sizeof why)) {
                ON("cgroup cpu.cfs_quota_us=%s", quota);
                p->cg_cpus = 0;
            }
        }
        if (p->cg_pids > 0) {
            char n[64];
            snprintf(n, sizeof n, "%lld", p->cg_pids);
            const char *files[] = { "pids.max" };
            const char *values[] = { n };
            if (mcpx_cgroup_v1("pids", leaf, files, values, 1, why, sizeof why)) {
                ON("cgroup pids.max=%lld", p->cg_pids);
                p->cg_pids = 0;
            }
        }
        if (p->cg_memory <= 0 && p->cg_cpus <= 0 && p->cg_pids <= 0) return;
    }
    /* Fallbacks: memory becomes an address-space cap; the process count is RLIMIT_NPROC (per
       uid); CPU bandwidth has no rlimit equivalent. */
    if (p->cg_memory > 0) {
        if (p->rl_as < 0 || p->cg_memory < p->rl_as) p->rl_as = p->cg_memory;
        NOTE("cgroup memory unavailable (%s): RLIMIT_AS used instead", why);
    }
    if (p->cg_pids > 0) NOTE("cgroup pids.max unavailable (%s): RLIMIT_NPROC only", why);
    if (p->cg_cpus > 0) {
        if (p->cg_optional) NOTE("default cpu limit %.2f not applied (no writable cgroup: %s)", p->cg_cpus, why);
        else OFF("cpu limit %.2f (no writable cgroup: %s)", p->cg_cpus, why);
    }
}

static int mcpx_set_rlimit(int resource, long long value, const char *label, struct mcpx_report *rep) {
    if (value < 0) return 0;
    struct rlimit rl = { (rlim_t)value, (rlim_t)value };
    struct rlimit cur;
    /* Never raise a hard limit the launcher already has below the requested one. */
    if (getrlimit(resource, &cur) == 0 && cur.rlim_max != RLIM_INFINITY && cur.rlim_max < rl.rlim_max) {
        rl.rlim_max = rl.rlim_cur = cur.rlim_max;
    }
    if (setrlimit(resource, &rl) < 0) {
        mcpx_err("setrlimit %s=%lld: %s", label, value, strerror(errno));
        return -1;
    }
    ON("%s=%lld", label, (long long)rl.rlim_cur);
    return 0;
}

static int mcpx_apply_rlimits(const struct mcpx_policy *p, struct mcpx_report *rep) {
    struct rlimit zero = { 0, 0 };
    if (setrlimit(RLIMIT_CORE, &zero) < 0) { mcpx_err("setrlimit core=0: %s", strerror(errno)); return -1; }
    ON("core=0");
    if (mcpx_set_rlimit(RLIMIT_AS, p->rl_as, "as", rep) < 0) return -1;
    if (mcpx_set_rlimit(RLIMIT_DATA, p->rl_data, "data", rep) < 0) return -1;
    if (mcpx_set_rlimit(RLIMIT_NOFILE, p->rl_nofile, "nofile", rep) < 0) return -1;
    if (mcpx_set_rlimit(RLIMIT_CPU, p->rl_cpu, "cpu", rep) < 0) return -1;
    if (mcpx_set_rlimit(RLIMIT_FSIZE, p->rl_fsize, "fsize", rep) < 0) return -1;
    if (mcpx_set_rlimit(RLIMIT_NPROC, p->rl_nproc, "nproc", rep) < 0) return -1;
    return 0;
}

static int mcpx_drop_ids(const struct mcpx_policy *p, struct mcpx_report *rep) {
    if (p->uid < 0) {
        if (geteuid() == 0) OFF("uid drop (none planned: the server runs as root)");
        return 0;
    }
    if (geteuid() != 0) {
        /* Without CAP_SETUID a drop is impossible; a non-root server is already unprivileged,
           and RLIMIT_NPROC holds for it. */
        NOTE("uid %ld not taken (launcher is not root; the server keeps uid %u)", p->uid, getuid());
        return 0;
    }
    gid_t g = (gid_t)p->gid;
    if (setgroups(1, &g) < 0 || setresgid(g, g, g) < 0 || setresuid((uid_t)p->uid, (uid_t)p->uid, (uid_t)p->uid) < 0) {
        mcpx_err("cannot drop to uid %ld gid %ld: %s", p->uid, p->gid, strerror(errno));
        return -1;
    }
    if (geteuid() == 0 || getuid() == 0 || setuid(0) == 0) {
        mcpx_err("uid drop to %ld did not hold", p->uid);
        return -1;
    }
    ON("uid=%ld gid=%ld", p->uid, p->gid);
    return 0;
}

static int mcpx_add_path_rule(int ruleset, const char *path, uint64_t want, uint64_t handled, struct mcpx_report *rep) {
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) { return 0; } /* the planner lists only existing paths; a race is harmless */
        mcpx_err("cannot open %s for a Landlock rule: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) { close(fd); return -1; }
    uint64_t allowed = want & handled;
    if (!S_ISDIR(st.st_mode)) allowed &= MCPX_LL_FILE_RIGHTS;
    if (allowed == 0) { close(fd); return 0; }
    struct mcpx_ll_path_beneath_attr attr = { .allowed_access = allowed, .parent_fd = fd };
    long r = syscall(SYS_landlock_add_rule, ruleset, MCPX_LL_RULE_PATH_BENEATH, &attr, 0);
    int saved = errno;
    close(fd);
    if (r < 0) { mcpx_err("landlock_add_rule %s: %s", path, strerror(saved)); return -1; }
    (void)rep;
    return 0;
}

/* Builds the ruleset (paths opened while still privileged). Returns the ruleset fd, -1 when
   Landlock is unavailable (reported), -2 on a hard error. */
static int mcpx_build_landlock(const struct mcpx_policy *p, int abi, int net_via_landlock, struct mcpx_report *rep) {
    if (abi <= 0) {
        OFF("landlock filesystem rules (kernel has no Landlock)");
        if (p->tcp_allowlist) OFF("tcp connect allowlist (no Landlock)");
        OFF("signal/abstract-unix scoping (no Landlock)");
        return -1;
    }
    uint64_t handled = mcpx_fs_rights_for_abi(abi);
    struct mcpx_ll_ruleset_attr attr = { .handled_access_fs = handled };
    if (abi >= 4 && (net_via_landlock || p->tcp_allowlist)) {
        attr.handled_access_net = MCPX_LL_NET_CONNECT_TCP | (net_via_landlock ? MCPX_LL_NET_BIND_TCP : 0);
    }
    if (abi >= 6) attr.scoped = MCPX_LL_SCOPE_ABSTRACT_UNIX | MCPX_LL_SCOPE_SIGNAL;
    size_t size = abi >= 6 ? sizeof attr : abi >= 4 ? offsetof(struct mcpx_ll_ruleset_attr, scoped)
                                                    : offsetof(struct mcpx_ll_ruleset_attr, handled_access_net);
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (ruleset < 0) { mcpx_err("landlock_create_ruleset: %s", strerror(errno)); return -2; }

    for (int i = 0; i < p->nrules; i++) {
        uint64_t want;
        switch (p->rules[i].access) {
        case MCPX_RO: want = MCPX_LL_READ_ONLY; break;
        case MCPX_RX: want = MCPX_LL_READ_EXEC; break;
        case MCPX_RW: want = handled; break;
        case MCPX_DEV: want = MCPX_LL_FS_READ_FILE | MCPX_LL_FS_WRITE_FILE | MCPX_LL_FS_TRUNCATE | MCPX_LL_FS_IOCTL_DEV; break;
        default: want = 0;
        }
        if (mcpx_add_path_rule(ruleset, p->rules[i].path, want, handled, rep) < 0) { close(ruleset); return -2; }
    }
    if (attr.handled_access_net && !net_via_landlock) {
        for (int i = 0; i < p->nports; i++) {
            struct mcpx_ll_net_port_attr port = { .allowed_access = MCPX_LL_NET_CONNECT_TCP, .port = (uint64_t)p->ports[i] };
            if (syscall(SYS_landlock_add_rule, ruleset, MCPX_LL_RULE_NET_PORT, &port, 0) < 0) {
                mcpx_err("landlock_add_rule tcp port %ld: %s", p->ports[i], strerror(errno));
                close(ruleset);
                return -2;
            }
        }
    }

    ON("landlock fs (abi %d, %d rules)", abi, p->nrules);
    if (abi < 2) OFF("landlock refer (kernel abi %d < 2)", abi);
    if (abi < 3) OFF("landlock truncate (kernel abi %d < 3)", abi);
    if (abi < 5) OFF("landlock ioctl on devices (kernel abi %d < 5)", abi);
    if (p->tcp_allowlist) {
        if (abi >= 4 && !net_via_landlock) {
            char list[512] = "none";
            if (p->nports > 0) list[0] = 0;
            for (int i = 0; i < p->nports; i++) mcpx_add(list, sizeof list, "%ld", p->ports[i]);
            ON("tcp connect only to ports %s", list);
        } else if (abi < 4) OFF("tcp connect allowlist (kernel abi %d < 4)", abi);
    }
    if (net_via_landlock) ON("landlock tcp bind+connect denied");
    if (abi >= 6) ON("scope signal+abstract-unix");
    else OFF("signal/abstract-unix scoping (kernel abi %d < 6)", abi);
    return ruleset;
}

/* The seccomp filter: kernel-facing calls an MCP server never needs answer EPERM. */
static int mcpx_apply_seccomp(const struct mcpx_policy *p, struct mcpx_report *rep) {
    static const int denied[] = {
#ifdef SYS_ptrace
        SYS_ptrace,
#endif
        SYS_process_vm_readv, SYS_process_vm_writev,
#ifdef SYS_kcmp
        SYS_kcmp,
#endif
        SYS_init_module, SYS_finit_module, SYS_delete_module,
        SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot,
#ifdef SYS_mount_setattr
        SYS_mount_setattr,
#endif
#ifdef SYS_fsopen
        SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_move_mount, SYS_open_tree,
#endif
        SYS_unshare, SYS_setns,
        SYS_keyctl, SYS_add_key, SYS_request_key,
        SYS_bpf, SYS_perf_event_open, SYS_userfaultfd,
        SYS_open_by_handle_at, SYS_name_to_handle_at,
        SYS_kexec_load,
#ifdef SYS_kexec_file_load
        SYS_kexec_file_load,
#endif
        SYS_reboot, SYS_swapon, SYS_swapoff, SYS_acct, SYS_quotactl, SYS_syslog,
        SYS_settimeofday, SYS_clock_settime, SYS_adjtimex, SYS_clock_adjtime,
        SYS_sethostname, SYS_setdomainname, SYS_vhangup,
#ifdef SYS_iopl
        SYS_iopl, SYS_ioperm,
#endif
#ifdef SYS_io_uring_setup
        SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
#endif
#ifdef SYS_uselib
        SYS_uselib,
#endif
    };
    enum { NDENIED = sizeof denied / sizeof denied[0] };
    struct sock_filter f[2 * NDENIED + 32];
    int n = 0;
#if defined(__x86_64__)
    const uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    const uint32_t arch = AUDIT_ARCH_AARCH64;
#else
#error "mcpproxy-sandbox: unsupported architecture for the seccomp filter"
#endif
#define ERRNO_RET(e) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))
    /* A foreign architecture (e.g. 32-bit syscalls on x86_64) would bypass the numbers below. */
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
    /* x32 syscall numbers share the x86_64 arch value. */
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1);
    f[n++] = (struct sock_filter)ERRNO_RET(EPERM);
#endif
    for (int i = 0; i < NDENIED; i++) {
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)denied[i], 0, 1);
        f[n++] = (struct sock_filter)ERRNO_RET(EPERM);
    }
    /* clone3 passes its flags in memory the filter cannot read: ENOSYS makes libc fall back to
       clone, whose flags are checked below. */
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1);
    f[n++] = (struct sock_filter)ERRNO_RET(ENOSYS);
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K,
        CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP, 0, 1);
    f[n++] = (struct sock_filter)ERRNO_RET(EPERM);
    if (p->deny_unix) {
        /* Landlock (ABI <= 7) does not mediate connect() to a pathname socket, and the filter
           cannot read the path: no AF_UNIX sockets at all. socketpair() stays allowed (an
           unnamed connected pair reaches nothing outside; runtimes use it for child stdio). */
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 3);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1);
        f[n++] = (struct sock_filter)ERRNO_RET(EACCES);
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
#undef ERRNO_RET
    struct sock_fprog prog = { .len = (unsigned short)n, .filter = f };
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0 &&
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) {
        mcpx_err("installing the seccomp filter failed: %s", strerror(errno));
        return -1;
    }
    ON("seccomp (%d calls denied, namespaces blocked)", (int)NDENIED + 1);
    if (p->deny_unix) ON("unix sockets denied (socket(AF_UNIX) fails)");
    return 0;
}

extern char **environ;

/* The server's environment: every MCPX_SANDBOX_ENV_PREFIX-prefixed variable of the launcher's
   own, prefix removed. Anything else in the launcher's environment is not passed on. */
static char **mcpx_server_environment(void) {
    size_t plen = strlen(MCPX_SANDBOX_ENV_PREFIX), n = 0;
    for (char **e = environ; e && *e; e++) n++;
    char **out = calloc(n + 1, sizeof *out);
    if (!out) return NULL;
    size_t k = 0;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, MCPX_SANDBOX_ENV_PREFIX, plen) == 0 && strchr(*e + plen, '=') && (*e)[plen] != '=') out[k++] = *e + plen;
    }
    out[k] = NULL;
    return out;
}

/* execve of `command` with `envp`: a name without a slash is looked up on the server's PATH. */
static void mcpx_exec(char **command, char **envp) {
    if (strchr(command[0], '/')) { execve(command[0], command, envp); return; }
    const char *path = "/usr/local/bin:/usr/bin:/bin";
    for (char **e = envp; *e; e++) if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
    int saved = ENOENT;
    char buf[4096];
    for (const char *s = path; ; ) {
        const char *colon = strchr(s, ':');
        size_t len = colon ? (size_t)(colon - s) : strlen(s);
        if (len > 0 && len + strlen(command[0]) + 2 < sizeof buf) {
            snprintf(buf, sizeof buf, "%.*s/%s", (int)len, s, command[0]);
            execve(buf, command, envp);
            if (errno != ENOENT && errno != ENOTDIR) saved = errno;
        }
        if (!colon) break;
        s = colon + 1;
    }
    errno = saved;
}

static void mcpx_close_inherited(void) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
#endif
    DIR *d = opendir("/proc/self/fd");
    if (!d) { for (int fd = 3; fd < 4096; fd++) close(fd); return; }
    int dfd = dirfd(d);
    int fds[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != dfd) fds[n++] = fd;
    }
    closedir(d);
    for (int i = 0; i < n; i++) close(fds[i]);
}

int mcpx_sandbox_main(int argc, char **argv) {
    struct mcpx_policy policy;
    struct mcpx_policy *p = &policy;
    struct mcpx_report report;
    struct mcpx_report *rep = &report;
    memset(rep, 0, sizeof *rep);
    if (mcpx_parse(argc, argv, p) < 0) return MCPX_SANDBOX_EXIT_USAGE;
    char **server_env = mcpx_server_environment();
    if (!server_env) { mcpx_err("out of memory"); return MCPX_SANDBOX_EXIT_SETUP; }
    /* Nothing the launcher itself calls from here on reads its environment; clear it anyway so
       no later libc path (locale, iconv, resolver, malloc tunables) can pick a variable up. */
    static char *empty_env[] = { NULL };
    environ = empty_env;

    /* A new session: the server and everything it spawns form one process group the proxy can
       signal as a whole. A launcher that already leads its group (spawned with setpgid) keeps it. */
    if (setsid() >= 0) ON("new session");
    else if (getpgrp() == getpid()) ON("own process group");
    else NOTE("no own process group (setsid: %s)", strerror(errno));

    int abi = mcpx_landlock_abi();

    /* The egress namespace is opened before any mount can hide /run. */
    int netns_fd = -1;
    if (p->net_path) {
        netns_fd = open(p->net_path, O_RDONLY | O_CLOEXEC);
        if (netns_fd < 0) { mcpx_err("network namespace %s: %s", p->net_path, strerror(errno)); return MCPX_SANDBOX_EXIT_SETUP; }
    }

    if (mcpx_make_private_dirs(p, rep) < 0) return MCPX_SANDBOX_EXIT_SETUP;
    if (mcpx_apply_mounts(p, rep) < 0) return MCPX_SANDBOX_EXIT_SETUP;
    mcpx_apply_cgroups(p, rep);

    int net_via_landlock = 0;
    if (netns_fd >= 0) {
        /* Egress: the proxy made this namespace; its only route leads to the egress proxy. Not
           joining it would leave the host network, so failure is fatal, never degraded. */
        if (setns(netns_fd, CLONE_NEWNET) < 0) {
            mcpx_err("cannot join network namespace %s: %s", p->net_path, strerror(errno));
            return MCPX_SANDBOX_EXIT_SETUP;
        }
        close(netns_fd);
        ON("network namespace %s (egress: a veth to the gateway only)", p->net_path);
    }
    if (p->net_none) {
        if (unshare(CLONE_NEWNET) == 0) {
            ON("network namespace (no interfaces up)");
        } else if (abi >= 4) {
            net_via_landlock = 1;
            /* The documented fallback: TCP is denied; UDP and other families are not. */
            NOTE("network namespace unavailable (%s): Landlock TCP deny instead, UDP not confined", strerror(errno));
        } else {
            OFF("network none (no network namespace: %s; Landlock abi %d < 4)", strerror(errno), abi);
        }
    }

    if (mcpx_apply_rlimits(p, rep) < 0) return MCPX_SANDBOX_EXIT_SETUP;

    int ruleset = mcpx_build_landlock(p, abi, net_via_landlock, rep);
    if (ruleset == -2) return MCPX_SANDBOX_EXIT_SETUP;

    if (mcpx_drop_ids(p, rep) < 0) return MCPX_SANDBOX_EXIT_SETUP;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        mcpx_err("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        return MCPX_SANDBOX_EXIT_SETUP;
    }
    ON("no_new_privs");

    if (rep->degraded && !p->allow_degraded) {
        mcpx_err("refusing to start: the kernel cannot enforce all of the sandbox policy: not enforced: %s. "
                 "Set \"sandbox\": {\"allow_degraded\": true} to start anyway, or use isolation mode docker.", rep->off);
        if (ruleset >= 0) close(ruleset);
        return MCPX_SANDBOX_EXIT_DEGRADED;
    }

    if (ruleset >= 0) {
        if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0) {
            mcpx_err("landlock_restrict_self: %s", strerror(errno));
            close(ruleset);
            return MCPX_SANDBOX_EXIT_SETUP;
        }
        close(ruleset);
    }

    if (mcpx_apply_seccomp(p, rep) < 0) return MCPX_SANDBOX_EXIT_SETUP;

    if (p->chdir_to && chdir(p->chdir_to) < 0) {
        mcpx_err("cannot enter working directory %s: %s", p->chdir_to, strerror(errno));
        return MCPX_SANDBOX_EXIT_SETUP;
    }

    mcpx_close_inherited();
    fprintf(stderr, "mcpproxy-sandbox: server \"%s\": %s; enforced: %s; not enforced: %s\n",
            p->name, rep->degraded ? "DEGRADED" : "confined", rep->on, rep->off[0] ? rep->off : "none");
    fflush(stderr);

    mcpx_exec(p->command, server_env);
    mcpx_err("cannot exec %s: %s", p->command[0], strerror(errno));
    return MCPX_SANDBOX_EXIT_EXEC;
}

/* ---- env-file exec: the entrypoint of a container that receives secrets -------------------------
   `mcpproxy-sandbox --env-file FILE -- command args...` (see csandbox.h). The launcher is mounted
   read-only into the container as its entrypoint; FILE lies in a read-only bind mount of a
   memory-backed host directory that the proxy empties once the server has started. The file holds
   `NAME=VALUE` entries each ended by a NUL byte (values may contain newlines). The entries are
   added to the container's environment (replacing same-named variables) and the command is
   exec'd, looked up on that environment's PATH like the engine would. No confinement here: the
   container is the boundary. */

#define MCPX_ENVFILE_MAX (1 << 20)

static int mcpx_envfile_read(const char *path, char **buf_out, size_t *len_out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) < 0) { int e = errno; close(fd); errno = e; return -1; }
    if (!S_ISREG(st.st_mode) || st.st_size > MCPX_ENVFILE_MAX) { close(fd); errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL; return -1; }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) { close(fd); errno = ENOMEM; return -1; }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    *buf_out = buf;
    *len_out = got;
    return 0;
}

int mcpx_memory_backed(const char *path) {
    struct statfs st;
    if (statfs(path, &st) != 0) return 0;
    return st.f_type == 0x01021994 /* tmpfs */ || st.f_type == (typeof(st.f_type))0x858458f6 /* ramfs */;
}

int mcpx_envfile_main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[1], "--env-file") != 0 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "mcpproxy-sandbox: usage: mcpproxy-sandbox --env-file FILE -- COMMAND [ARGS...]\n");
        return MCPX_SANDBOX_EXIT_USAGE;
    }
    const char *path = argv[2];
    char **command = argv + 4;
    char *buf = NULL;
    size_t len = 0;
    if (mcpx_envfile_read(path, &buf, &len) < 0) {
        fprintf(stderr, "mcpproxy-sandbox: cannot read the secret environment file %s: %s "
                "(it is removed once the server has started; a restarted process inside the same container cannot read it again)\n",
                path, strerror(errno));
        return MCPX_SANDBOX_EXIT_SETUP;
    }
    size_t have = 0, add = 0;
    for (char **e = environ; e && *e; e++) have++;
    for (size_t i = 0; i < len; i++) if (buf[i] == 0) add++;
    if (len > 0 && buf[len - 1] != 0) add++;
    char **envp = calloc(have + add + 1, sizeof *envp);
    if (!envp) { fprintf(stderr, "mcpproxy-sandbox: out of memory\n"); return MCPX_SANDBOX_EXIT_SETUP; }
    size_t k = 0;
    /* The file's entries first; a container variable of the same name is dropped. */
    for (size_t i = 0; i < len; ) {
        char *entry = buf + i;
        size_t elen = strlen(entry);
        i += elen + 1;
        char *eq = strchr(entry, '=');
        if (elen == 0 || !eq || eq == entry) continue;
        envp[k++] = entry;
    }
    size_t filed = k;
    for (char **e = environ; e && *e; e++) {
        char *eq = strchr(*e, '=');
        size_t nlen = eq ? (size_t)(eq - *e) : strlen(*e);
        int shadowed = 0;
        for (size_t j = 0; j < filed && !shadowed; j++) {
            if (strncmp(envp[j], *e, nlen) == 0 && envp[j][nlen] == '=') shadowed = 1;
        }
        if (!shadowed) envp[k++] = *e;
    }
    envp[k] = NULL;
    mcpx_exec(command, envp);
    int e = errno;
    fprintf(stderr, "mcpproxy-sandbox: cannot exec %s: %s\n", command[0], strerror(e));
    return e == ENOENT ? 127 : 126;
}

#else /* not Linux: the sandbox mode is a documented no-op there; the launcher refuses to run. */
#include <stdio.h>

int mcpx_landlock_abi(void) { return 0; }

int mcpx_sandbox_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "mcpproxy-sandbox: the native sandbox needs Linux (Landlock); use isolation mode docker or none\n");
    return MCPX_SANDBOX_EXIT_DEGRADED;
}
int mcpx_memory_backed(const char *path) { (void)path; return 0; }

int mcpx_envfile_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "mcpproxy-sandbox: --env-file needs Linux\n");
    return MCPX_SANDBOX_EXIT_SETUP;
}
#endif

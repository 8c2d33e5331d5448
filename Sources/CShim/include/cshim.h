#ifndef MCPX_CSHIM_H
#define MCPX_CSHIM_H
#include <sys/types.h>

/// Result of mcpx_spawn: the child's pid and the parent's ends of its stdio pipes.
typedef struct {
    pid_t pid;
    int stdin_fd;   /* write end: the child's stdin */
    int stdout_fd;  /* read end: the child's stdout */
    int stderr_fd;  /* read end: the child's stderr */
} mcpx_spawn_result;

/// Spawns `file` (searched on the PATH found in `envp` when it has no '/') with `argv` and
/// exactly the environment `envp`, in directory `cwd` (NULL: inherit). The child gets its own
/// session and process group, default signal dispositions and an empty signal mask, no fds but
/// 0-2, and SIGKILL as its parent-death signal; as root and with `own_pidns` it is also PID 1 of
/// a new PID namespace, so nothing it starts outlives it (0 for a program that must see host
/// pids in /proc, such as podman). The fork happens on one dedicated, never-exiting
/// thread, because PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the process.
/// Returns 0, or an errno value (the child's exec/chdir errno is reported back over a pipe).
int mcpx_spawn(const char *file, char *const argv[], char *const envp[], const char *cwd,
               int own_pidns, mcpx_spawn_result *out);

/// Blocks until `pid` exits; returns its wait status (or -errno).
int mcpx_wait(pid_t pid);

/// Returns free heap memory to the system (glibc's malloc_trim; a no-op elsewhere). Swift's
/// Glibc module does not export <malloc.h>.
void mcpx_malloc_trim(void);

/// Decoders for the wait status returned by mcpx_wait.
int mcpx_wifexited(int status);
int mcpx_wexitstatus(int status);
int mcpx_wifsignaled(int status);
int mcpx_wtermsig(int status);

/// Sends `sig` to the process group `pgid` (the child's pid).
int mcpx_killpg(pid_t pgid, int sig);

/// A pidfd for `pid` (readable once the process exits; close-on-exec), or -errno.
int mcpx_pidfd_open(pid_t pid);

/// Sets O_NONBLOCK on fd.
int mcpx_set_nonblocking(int fd);
#endif

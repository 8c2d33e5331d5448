// The native sandbox launcher of mcpproxy (isolation mode `sandbox`).
//
// The launcher confines itself (rlimits, cgroup, network namespace, uid drop, no_new_privs,
// Landlock filesystem/network/scope rules, seccomp) single-threaded, then execs the server so that
// the server inherits the confinement together with the raw stdin/stdout pipes. The policy travels
// as argv before `--` and is therefore gone after exec. The server's environment travels in the
// launcher's environment with every name prefixed by MCPX_SANDBOX_ENV_PREFIX (inert for the
// dynamic loader and libc) and is handed over, prefix removed, only by the final execve.
#ifndef MCPX_CSANDBOX_H
#define MCPX_CSANDBOX_H

#ifdef __cplusplus
extern "C" {
#endif

/// Prefix of the launcher's environment variables that carry the server's environment.
#define MCPX_SANDBOX_ENV_PREFIX "MCPX_SANDBOX_ENV_"

/// Exit status: the policy on the command line is malformed.
#define MCPX_SANDBOX_EXIT_USAGE 120
/// Exit status: a confinement step failed (cgroup, unshare, uid drop, Landlock, seccomp).
#define MCPX_SANDBOX_EXIT_SETUP 121
/// Exit status: the kernel cannot enforce the whole policy and `--allow-degraded` was not given.
#define MCPX_SANDBOX_EXIT_DEGRADED 122
/// Exit status: exec of the server failed (not found, not executable, denied by the policy).
#define MCPX_SANDBOX_EXIT_EXEC 123

/// Runs the launcher: `argv` is `[prog, policy options..., "--", server, server args...]`.
/// Returns only on failure (with one of the exit statuses above); on success it execs the server.
int mcpx_sandbox_main(int argc, char **argv);

/// The container entrypoint for servers that receive secrets: `argv` is
/// `[prog, "--env-file", FILE, "--", command, args...]`. Adds the NUL-separated `NAME=VALUE`
/// entries of FILE to the environment and execs the command (PATH lookup). Returns only on
/// failure: MCPX_SANDBOX_EXIT_USAGE, MCPX_SANDBOX_EXIT_SETUP (file unreadable), 127 (command not
/// found) or 126 (not executable), the statuses a container engine uses for the same faults.
int mcpx_envfile_main(int argc, char **argv);

/// 1 when `path` lies on a memory-backed filesystem (tmpfs or ramfs), else 0.
int mcpx_memory_backed(const char *path);

/// The Landlock ABI version the running kernel supports: 0 when Landlock is absent or disabled.
int mcpx_landlock_abi(void);

#ifdef __cplusplus
}
#endif

#endif

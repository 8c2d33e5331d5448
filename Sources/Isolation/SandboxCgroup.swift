import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The per-launch cgroups the sandbox launcher creates (`mcpproxy/<server>-<launch id>`): the
/// proxy removes them once the server has stopped, so none accumulate across restarts.
public enum SandboxCgroup {
    /// Kills whatever is still in `dir` (a server's leftover children) and removes the cgroup.
    /// Returns true when the directory is gone (or never existed).
    @discardableResult
    public static func remove(_ dir: String, timeout: Double = 2) -> Bool {
        guard access(dir, F_OK) == 0 else { return true }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            killMembers(dir)
            if rmdir(dir) == 0 || errno == ENOENT { return true }
            if Date() >= deadline { return false }
            usleep(10_000)
        }
    }

    /// v2: `cgroup.kill` kills every member at once; v1: SIGKILL to each pid in `cgroup.procs`.
    static func killMembers(_ dir: String) {
        let killFile = dir + "/cgroup.kill"
        if access(killFile, W_OK) == 0 {
            let fd = open(killFile, O_WRONLY | O_CLOEXEC)
            if fd >= 0 { _ = write(fd, "1", 1); close(fd) }
            return
        }
        guard let procs = readProcFile(dir + "/cgroup.procs") else { return }
        for line in procs.split(separator: "\n") {
            if let pid = Int32(line.trimmingCharacters(in: .whitespaces)), pid > 0 { kill(pid, SIGKILL) }
        }
    }
}

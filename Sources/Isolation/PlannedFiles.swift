import Foundation
import ProxyCore
#if canImport(Glibc)
import Glibc
#endif

/// Writes and removes the files a plan needs on disk (`LaunchPlan.files`), for every backend.
public enum PlannedFiles {
    /// Writes each file of `plan` with its mode set at creation, so a secret is never readable by
    /// others, not even briefly: any old file is unlinked, then created exclusively (no symlink
    /// followed), then written in full.
    public static func write(_ plan: LaunchPlan) throws {
        for file in plan.files {
            let dir = (file.path as NSString).deletingLastPathComponent
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
            unlink(file.path)
            let fd = open(file.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(file.mode))
            guard fd >= 0 else {
                throw ProxyError(.internalError, "cannot create \(file.path): \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            _ = fchmod(fd, mode_t(file.mode))
            let bytes = Array(file.contents.utf8)
            var written = 0
            while written < bytes.count {
                let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if n <= 0 { throw ProxyError(.internalError, "cannot write \(file.path): \(String(cString: strerror(errno)))") }
                written += n
            }
        }
    }

    /// Removes the plan's files (missing ones are fine).
    public static func remove(_ plan: LaunchPlan) {
        for file in plan.files { try? FileManager.default.removeItem(atPath: file.path) }
    }
}

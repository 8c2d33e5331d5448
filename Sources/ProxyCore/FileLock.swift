import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock` on a file, held for the life of the process (or until `release`). The
/// kernel drops it when the process dies however it dies, so a lock that can be taken means its
/// previous holder is gone: no stale pid files to guess about.
public final class FileLock: @unchecked Sendable {  // @unchecked: `fd` changes only in `release`, which the single owner calls once
    public let path: String
    private var fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    /// Takes the lock without waiting and writes this process's pid into the file. Returns nil
    /// when another process holds it; throws when the file cannot be opened.
    public static func tryAcquire(path: String) throws -> FileLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ProxyError(.internalError, "cannot open lock file \(path): \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            close(fd)
            if e == EWOULDBLOCK { return nil }
            throw ProxyError(.internalError, "cannot lock \(path): \(String(cString: strerror(e)))")
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return FileLock(path: path, fd: fd)
    }

    /// The pid written by the holder of the lock at `path`, if readable.
    /// Whether another process holds the lock now (tested with a shared, non-blocking flock on
    /// a read-only descriptor: nothing is written and nothing is kept).
    public static func isHeld(path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 { flock(fd, LOCK_UN); return false }
        return errno == EWOULDBLOCK
    }

    public static func holderPID(path: String) -> Int32? {
        guard let s = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int32(s.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Releases the lock (also released when the process exits).
    public func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}

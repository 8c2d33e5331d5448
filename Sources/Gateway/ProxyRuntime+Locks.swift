import Foundation
import ProxyCore

#if canImport(Glibc)
import Glibc
#endif

extension ProxyRuntime {
    /// One `serve` per data dir: two proxies writing the same state database and config would
    /// corrupt each other's view. The lock is `<data dir>/mcpproxy.lock`, holding the pid.
    static func lockDataDir(_ dataDir: String) throws -> FileLock {
        let path = (dataDir as NSString).appendingPathComponent("mcpproxy.lock")
        if let lock = try FileLock.tryAcquire(path: path) { return lock }
        let who = FileLock.holderPID(path: path).map { "pid \($0)" } ?? "another process"
        throw ProxyError(.conflict, "data dir \(dataDir) is in use by another mcpproxy (\(who)); stop it first, or give this one its own --data-dir")
    }

    /// Takes the lock of this instance's runtime dir and removes the runtime dirs of instances
    /// that died without cleaning up (their lock can be taken: the kernel dropped it with them).
    /// Only shared roots (`/run/mcpproxy`) are swept; dirs without a lock file are left alone.
    static func lockRuntimeDir(_ dir: String) -> FileLock? {
        let lock = try? FileLock.tryAcquire(path: (dir as NSString).appendingPathComponent(".instance.lock"))
        let base = (dir as NSString).deletingLastPathComponent
        guard base == "/run/mcpproxy" || base == "/var/run/mcpproxy",
              let entries = try? FileManager.default.contentsOfDirectory(atPath: base) else { return lock }
        for entry in entries {
            let other = (base as NSString).appendingPathComponent(entry)
            guard other != dir else { continue }
            let lockPath = (other as NSString).appendingPathComponent(".instance.lock")
            guard FileManager.default.fileExists(atPath: lockPath),
                  let stale = try? FileLock.tryAcquire(path: lockPath) else { continue }
            try? FileManager.default.removeItem(atPath: other)
            stale.release()
        }
        return lock
    }

    /// `<data dir>/proxy.address`: the address the running proxy listens on, written once it
    /// listens (`RunningProxy` reads it while the data dir's lock is held).
    public static let addressFile = "proxy.address"

    static func publishAddress(_ url: String, dataDir: String) {
        let path = (dataDir as NSString).appendingPathComponent(addressFile)
        FileManager.default.createFile(atPath: path, contents: Data((url + "\n").utf8), attributes: [.posixPermissions: 0o600])
    }

}

import Foundation
import Logging
import ProxyCore

#if canImport(Glibc)
import Glibc
#endif

/// The proxy's data dir, set up once at start: the directory (0700) and its lock (one `serve`
/// per data dir), the log files with the main logger, the config file (a commented default on
/// first run), and the admin API key. `ProxyRuntime` only wires what this hands over.
struct ProxyHome {
    let dataDir: String
    /// Held while this proxy runs.
    let lock: FileLock
    let logs: LogFiles
    let logger: Logger

    static func open(dataDir: String, configPath: String, logLevel: Logger.Level) throws -> ProxyHome {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let lock = try lockDataDir(dataDir)
        let logs = LogFiles(directory: (dataDir as NSString).appendingPathComponent("logs"))
        let mainFile = logs.main
        var logger = Logger(label: "mcpproxy") { label in
            FileLogHandler(label: label, files: [mainFile], level: logLevel, alsoStderr: true)
        }
        logger.logLevel = logLevel
        if !fm.fileExists(atPath: configPath) {
            try ConfigFile.writeAtomically(path: configPath, data: Data(DefaultConfig.text.utf8))
            ConsoleSink.standardError.write("mcpproxy: no config found; wrote a commented default config to \(configPath)")
        }
        return ProxyHome(dataDir: dataDir, lock: lock, logs: logs, logger: logger)
    }

    /// One `serve` per data dir: two proxies writing the same state database and config would
    /// corrupt each other's view. The lock is `<data dir>/mcpproxy.lock`, holding the pid.
    static func lockDataDir(_ dataDir: String) throws -> FileLock {
        let path = (dataDir as NSString).appendingPathComponent("mcpproxy.lock")
        if let lock = try FileLock.tryAcquire(path: path) { return lock }
        let who = FileLock.holderPID(path: path).map { "pid \($0)" } ?? "another process"
        throw ProxyError(.conflict, "data dir \(dataDir) is in use by another mcpproxy (\(who)); stop it first, or give this one its own --data-dir")
    }

    /// The admin API key: MCPPROXY_API_KEY, else `<data>/api_key` (created 0600 on first run).
    func apiKey() throws -> String {
        if let k = ProcessSettings.current.apiKey { return k }
        let path = (dataDir as NSString).appendingPathComponent("api_key")
        if let d = FileManager.default.contents(atPath: path) {
            let k = String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if !k.isEmpty { return k }
        }
        let key = ConsoleSessions.randomToken()
        try ConfigFile.writeAtomically(path: path, data: Data((key + "\n").utf8))
        chmod(path, 0o600)
        logger.info("generated an API key in \(path)")
        return key
    }
}

/// This proxy instance's id and its runtime dir (per-launch files: cid files, env files, sandbox
/// homes and temp dirs), locked while it runs; runtime dirs of instances that died are removed.
struct InstanceDirectory {
    let id: String
    let path: String
    /// nil where the lock file could not be made (the dir still works; it is just not swept).
    let lock: FileLock?

    static func make(dataDir: String) throws -> InstanceDirectory {
        let id = String(UUID().uuidString.lowercased().prefix(12)).replacingOccurrences(of: "-", with: "")
        let path = try makeRuntimeDir(dataDir: dataDir, instanceID: id)
        return InstanceDirectory(id: id, path: path, lock: lockRuntimeDir(path))
    }

    /// The runtime dir. As root, sandboxed servers drop to an unprivileged uid that must reach
    /// their private dirs, and the data dir (0700, often under /root) is closed to it: use
    /// /run/mcpproxy/<instance> (0711: traversable, not listable; files inside keep their own
    /// modes). Otherwise a private dir in the data dir.
    static func makeRuntimeDir(dataDir: String, instanceID: String) throws -> String {
        let fm = FileManager.default
        if getuid() == 0 {
            for base in ["/run/mcpproxy", "/var/run/mcpproxy"] {
                var st = stat()
                if lstat(base, &st) != 0 { mkdir(base, 0o711) }
                guard lstat(base, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == 0 else { continue }
                chmod(base, 0o711)
                let dir = base + "/" + instanceID
                if mkdir(dir, 0o711) == 0 || errno == EEXIST { chmod(dir, 0o711); return dir }
            }
        }
        let dir = (dataDir as NSString).appendingPathComponent("run")
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return dir
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
}

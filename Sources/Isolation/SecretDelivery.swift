import Foundation
import ProxyCore
import CSandbox
#if canImport(Glibc)
import Glibc
#endif

/// How `${secret:NAME}` values reach a server in a container without `docker run -e` (which
/// `docker inspect` shows to anyone who may talk to the engine): docs/security.md, "Secrets".
///
/// - The values go into one file, `NAME=VALUE` entries each ended by a NUL byte, in a per-launch
///   directory on memory-backed storage (tmpfs: `/run/mcpproxy-secrets`, else
///   `$XDG_RUNTIME_DIR/mcpproxy-secrets`, else `/dev/shm/mcpproxy-secrets-UID`). Directory 0700
///   and file 0400, owned by the container's uid:gid when the proxy is root and the user numeric.
/// - That directory is bind-mounted read-only at `containerDir`; the static launcher
///   (`mcpproxy-sandbox`) is bind-mounted read-only at `containerLauncher` and made the
///   entrypoint: `--env-file FILE -- [image entrypoint...] command args...`. It adds the entries to
///   the environment and execs the command on the container's PATH.
/// - Once the server has answered `initialize` the proxy deletes the file (the launcher read it
///   before exec), so it is no longer visible in the container; the directory goes when the
///   container stops; `cleanupOrphans` removes directories of proxies that died.
public struct SecretDelivery: Sendable, Equatable {
    /// Where the per-launch host directory appears inside the container (read-only).
    public static let containerDir = "/run/mcpproxy/secrets"
    /// Where the launcher appears inside the container (read-only); the container's entrypoint.
    public static let containerLauncher = "/run/mcpproxy/launch"
    /// The file's name in both directories.
    public static let fileName = "env"
    /// The file inside the container.
    public static var containerFile: String { containerDir + "/" + fileName }

    /// The per-launch host directory (`<base>/<proxy pid>-<container name>`).
    public var hostDir: String
    /// The static launcher on the host.
    public var hostLauncher: String
    /// The file's contents: `NAME=VALUE\0` per variable, names sorted.
    public var contents: String
    /// The variables delivered (names only, for logs and `doctor`).
    public var names: [String]
    /// The container user's numeric uid and gid when known (owner of the directory and file when
    /// the proxy is root); nil when the user is a name or the image's.
    public var uid: UInt32?
    public var gid: UInt32?

    public init(hostDir: String, hostLauncher: String, contents: String, names: [String], uid: UInt32?, gid: UInt32?) {
        self.hostDir = hostDir
        self.hostLauncher = hostLauncher
        self.contents = contents
        self.names = names
        self.uid = uid
        self.gid = gid
    }

    /// The file on the host.
    public var hostFile: String { hostDir + "/" + Self.fileName }

    /// The engine options that mount the directory and the launcher and make the launcher the
    /// entrypoint (placed before extra args and the image).
    public var runOptions: [String] {
        ["--volume", "\(hostDir):\(Self.containerDir):ro",
         "--volume", "\(hostLauncher):\(Self.containerLauncher):ro",
         "--entrypoint", Self.containerLauncher]
    }

    /// The words after the image, before the image's own entrypoint and the command.
    public static let launcherArguments = ["--env-file", containerFile, "--"]

    /// The file's contents for `variables` (names sorted); nil with the offending name when a
    /// name or value holds a NUL byte, which the file format cannot carry.
    public static func encode(_ variables: [String: String]) -> (contents: String, bad: String?) {
        var out = ""
        for key in variables.keys.sorted() {
            let value = variables[key]!
            if key.contains("\0") || value.contains("\0") { return ("", key) }
            out += "\(key)=\(value)\0"
        }
        return (out, nil)
    }

    /// The numeric uid and gid of a `--user` value, nil for names or a missing group (then the
    /// file is made readable without knowing the owner: see `write`).
    public static func numericOwner(_ user: String?) -> (uid: UInt32, gid: UInt32)? {
        guard let user, let u = DockerCLI.User(user), let g = u.group,
              let uid = DockerCLI.User.numericID(u.user), let gid = DockerCLI.User.numericID(g),
              uid >= 0, gid >= 0, uid <= Int64(UInt32.max), gid <= Int64(UInt32.max) else { return nil }
        return (UInt32(uid), UInt32(gid))
    }

    /// The plan's arguments with the image's entrypoint (from `image inspect`) placed after the
    /// launcher's `--`, so the command runs exactly as `docker run IMAGE command` would.
    public static func withImageEntrypoint(_ arguments: [String], image: String, entrypoint: [String]) -> [String] {
        guard !entrypoint.isEmpty, let i = arguments.lastIndex(of: image) else { return arguments }
        let tail = Array(arguments[(i + 1)...])
        guard tail.starts(with: launcherArguments) else { return arguments }
        return Array(arguments[...i]) + launcherArguments + entrypoint + tail.dropFirst(launcherArguments.count)
    }

    // MARK: - Doing side

    /// True when `path` lies on tmpfs or ramfs.
    public static func isMemoryBacked(_ path: String) -> Bool {
        mcpx_memory_backed(path) == 1
    }

    /// The base directory for this proxy's secret directories: the first candidate whose parent
    /// is memory-backed (nil: none, and servers that need one are refused with the reason).
    public static func baseDirectory(environment: [String: String] = ProcessSettings.current.environment,
                                     uid: uid_t = geteuid()) -> String? {
        candidates(environment: environment, uid: uid).first { isMemoryBacked(($0 as NSString).deletingLastPathComponent) }
    }

    /// The candidates, in order of preference.
    public static func candidates(environment: [String: String], uid: uid_t) -> [String] {
        var out: [String] = []
        if uid == 0 { out.append("/run/mcpproxy-secrets") }
        if let xdg = environment["XDG_RUNTIME_DIR"], xdg.hasPrefix("/") { out.append(xdg + "/mcpproxy-secrets") }
        out.append("/dev/shm/mcpproxy-secrets-\(uid)")
        return out
    }

    /// Creates the base directory 0700, refusing one that is a symlink or not ours (a shared
    /// /dev/shm). The container never walks it: the engine mounts the launch directory itself.
    static func ensureBase(_ base: String, mode: mode_t = 0o700) throws {
        if mkdir(base, 0o700) != 0 && errno != EEXIST {
            throw ProxyError(.internalError, "cannot create the secret directory \(base): \(String(cString: strerror(errno)))")
        }
        var st = stat()
        guard lstat(base, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == geteuid() else {
            throw ProxyError(.refused, "the secret directory \(base) is not a directory owned by this user (a symlink or another user's); remove it")
        }
        if st.st_mode & 0o7777 != mode { _ = chmod(base, mode) }
    }

    /// Writes the directory and the file with their modes set at creation: the launch directory
    /// and file are owned by the container user (proxy root, numeric user: 0700/0400); otherwise
    /// the launch directory is 0711 and the file 0444, inside the proxy user's 0700 base
    /// (docs/security.md says what that exposes).
    public func write() throws {
        let base = (hostDir as NSString).deletingLastPathComponent
        let chownable = geteuid() == 0 && uid != nil && gid != nil
        let sameUser = uid == geteuid()
        let privateMode = chownable || sameUser
        try Self.ensureBase(base)
        if !Self.isMemoryBacked(base) {
            throw ProxyError(.refused, "the secret directory \(base) is not on memory-backed storage (tmpfs); secrets are never written to disk")
        }
        try? FileManager.default.removeItem(atPath: hostDir)
        guard mkdir(hostDir, privateMode ? 0o700 : 0o711) == 0 else {
            throw ProxyError(.internalError, "cannot create \(hostDir): \(String(cString: strerror(errno)))")
        }
        let fd = open(hostFile, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, privateMode ? 0o400 : 0o444)
        guard fd >= 0 else { throw ProxyError(.internalError, "cannot create \(hostFile): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        _ = fchmod(fd, privateMode ? 0o400 : 0o444)
        let bytes = Array(contents.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { throw ProxyError(.internalError, "cannot write \(hostFile): \(String(cString: strerror(errno)))") }
            written += n
        }
        if chownable, let uid, let gid {
            _ = fchown(fd, uid, gid)
            _ = chown(hostDir, uid, gid)
        }
        _ = chmod(hostDir, privateMode ? 0o700 : 0o711)
    }

    /// Deletes the file (the server has read it); the empty directory stays mounted until the
    /// container stops.
    public func removeFile() { unlink(hostFile) }

    /// Deletes the directory and anything in it.
    public func removeDirectory() { try? FileManager.default.removeItem(atPath: hostDir) }

    /// Removes the secret directories under `base` whose proxy (the pid in the name) is gone, and
    /// those of `ownPID`'s earlier run. Returns the names removed.
    @discardableResult
    public static func cleanupOrphans(base: String, isAlive: (Int32) -> Bool = { kill($0, 0) == 0 || errno == EPERM }) -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: base) else { return [] }
        var removed: [String] = []
        for name in entries {
            guard let dash = name.firstIndex(of: "-"), let pid = Int32(name[..<dash]) else { continue }
            if pid == getpid() || isAlive(pid) { continue }
            try? FileManager.default.removeItem(atPath: base + "/" + name)
            removed.append(name)
        }
        return removed
    }
}

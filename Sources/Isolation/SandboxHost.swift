import Foundation
#if canImport(Glibc)
import Glibc
#endif
import CSandbox

/// File-system and process facts the sandbox planner needs. A seam: the planner stays pure and
/// tests pass a fake host; `LiveSandboxHost` answers from the real machine.
public protocol SandboxHost: Sendable {
    /// Whether anything (file, directory, device) exists at `path` (symlinks followed).
    func exists(_ path: String) -> Bool
    /// Whether `path` is a directory (symlinks followed).
    func isDirectory(_ path: String) -> Bool
    /// Whether `path` is a regular file this process may execute.
    func isExecutableFile(_ path: String) -> Bool
    /// `path` with every symlink resolved, or nil when it does not exist.
    func realPath(_ path: String) -> String?
    /// Up to `limit` bytes of the file at `path` as text (UTF-8, lossy), or nil.
    func readText(_ path: String, limit: Int) -> String?
    /// Directories outside the system paths holding shared libraries the executable loads (e.g. the
    /// Swift runtime for a dynamically linked Swift binary).
    func runtimeLibraryDirectories(forExecutable path: String) -> [String]
    /// The proxy's effective uid (0: root, so the sandbox drops to an unprivileged uid).
    var effectiveUID: UInt32 { get }
    /// The first directory on the way to `path` (the path itself included when it is a directory)
    /// that `uid`/`gid` may not search, or nil when every one is searchable.
    func unsearchableAncestor(of path: String, uid: UInt32, gid: UInt32) -> String?
}

extension SandboxHost {
    /// Hosts that know nothing of permissions (test fakes): every directory is searchable.
    public func unsearchableAncestor(of path: String, uid: UInt32, gid: UInt32) -> String? { nil }
}

/// The real machine.
public struct LiveSandboxHost: SandboxHost {
    public init() {}

    public func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    public func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public func isExecutableFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }

    public func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    public func readText(_ path: String, limit: Int) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: limit) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    public func runtimeLibraryDirectories(forExecutable path: String) -> [String] {
        // A dynamically linked Swift binary names libswiftCore.so in its dynamic section, which
        // sits near the start of the file; the runtime it needs is the one this proxy loaded.
        guard let handle = FileHandle(forReadingAtPath: path),
              let head = try? handle.read(upToCount: 4 << 20) else { return [] }
        try? handle.close()
        guard head.starts(with: [0x7F, 0x45, 0x4C, 0x46]),
              head.range(of: Data("libswiftCore.so".utf8)) != nil else { return [] }
        return Self.loadedSwiftRuntimeDirectory.map { [$0] } ?? []
    }

    public var effectiveUID: UInt32 { geteuid() }

    public func unsearchableAncestor(of path: String, uid: UInt32, gid: UInt32) -> String? {
        guard path.hasPrefix("/"), uid != 0 else { return nil }
        var prefix = ""
        for part in path.split(separator: "/") {
            let dir = prefix.isEmpty ? "/" : prefix
            var st = stat()
            guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return nil }
            let bit: mode_t = st.st_uid == uid ? S_IXUSR : st.st_gid == gid ? S_IXGRP : S_IXOTH
            if st.st_mode & bit == 0 { return dir }
            prefix += "/" + part
        }
        return nil
    }

    /// The directory of the libswiftCore.so mapped into this process, from /proc/self/maps.
    static let loadedSwiftRuntimeDirectory: String? = {
        guard let maps = readProcFile("/proc/self/maps") else { return nil }
        for line in maps.split(separator: "\n") where line.hasSuffix("/libswiftCore.so") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            return (String(line[slash...]) as NSString).deletingLastPathComponent
        }
        return nil
    }()
}

/// What the running kernel offers the sandbox, probed once; used for planning and reporting.
public struct SandboxKernel: Sendable, Equatable {
    /// Landlock ABI version: 0 when Landlock is absent or disabled.
    public var landlockABI: Int
    /// Whether the launcher (spawned by this proxy) can create a network namespace.
    public var canUnshareNetwork: Bool
    /// Whether the launcher can create cgroups for memory/CPU limits.
    public var cgroupsWritable: Bool
    /// Whether the cgroup hierarchy is the unified v2 one (else v1, one tree per controller).
    public var cgroupV2: Bool

    public init(landlockABI: Int, canUnshareNetwork: Bool, cgroupsWritable: Bool, cgroupV2: Bool = true) {
        self.landlockABI = landlockABI
        self.canUnshareNetwork = canUnshareNetwork
        self.cgroupsWritable = cgroupsWritable
        self.cgroupV2 = cgroupV2
    }

    /// The running kernel (probed once per process; nothing here changes while the proxy runs).
    public static let current: SandboxKernel = probe()

    static func probe() -> SandboxKernel {
        #if os(Linux)
        let abi = Int(mcpx_landlock_abi())
        // unshare(CLONE_NEWNET) needs CAP_SYS_ADMIN (bit 21 of the effective capability set)
        // and a kernel built with network namespaces.
        var capSysAdmin = false
        if let status = readProcFile("/proc/self/status") {
            for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
                let hex = line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces)
                if let caps = UInt64(hex, radix: 16) { capSysAdmin = caps & (1 << 21) != 0 }
            }
        }
        let netns = access("/proc/self/ns/net", F_OK) == 0
        let v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0
        let cgroupRoot = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory"
        let cgroups = access(cgroupRoot, W_OK) == 0
        return SandboxKernel(landlockABI: abi, canUnshareNetwork: capSysAdmin && netns, cgroupsWritable: cgroups, cgroupV2: v2)
        #else
        return SandboxKernel(landlockABI: 0, canUnshareNetwork: false, cgroupsWritable: false)
        #endif
    }
}

/// Reads a whole procfs file. procfs reports a size of 0, so size-based readers return nothing:
/// read until EOF instead.
func readProcFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: out, as: UTF8.self)
}

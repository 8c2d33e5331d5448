import Foundation
import ProxyCore

// The issue-9 policy pieces of the sandbox planner: which env names steer the loader, which
// directories are never writable, which uid each server gets, where sockets live.
extension SandboxPlanner {
    /// Declared env names that change how the dynamic loader or libc behave (glibc's list of
    /// variables it drops for setuid programs, plus the prefixes of whole families).
    public static let loaderEnvNames: Set<String> = [
        "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "NIS_PATH", "NLSPATH",
        "RESOLV_HOST_CONF", "RES_OPTIONS", "TZDIR",
    ]
    public static let loaderEnvPrefixes = ["LD_", "MALLOC_", "GLIBC_", "MCPX_SANDBOX_ENV_"]

    /// Whether a declared env name steers the loader or libc (refused without `loader_env`).
    public static func isLoaderVariable(_ name: String) -> Bool {
        loaderEnvNames.contains(name) || loaderEnvPrefixes.contains { name.hasPrefix($0) }
    }

    /// Prefix under which the launcher receives the server's environment (csandbox.h).
    public static let environmentPrefix = "MCPX_SANDBOX_ENV_"

    /// The server's own environment in a sandbox plan (the launcher's, prefix removed).
    public static func serverEnvironment(of plan: LaunchPlan) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in plan.environment where k.hasPrefix(environmentPrefix) { out[String(k.dropFirst(environmentPrefix.count))] = v }
        return out
    }

    /// Directories a server may never write or work in (it or anything beneath it). `/` and
    /// `/home` are refused only as themselves; homes of other users are refused separately.
    public static let systemDirectories = [
        "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/proc", "/sys",
        "/dev", "/var/lib", "/var/log", "/var/cache", "/var/spool", "/var/mail", "/var/run", "/run", "/root",
        "/snap", "/var/snap",
    ]
    /// Directories where unix sockets usually live, hidden behind an empty tmpfs when the server
    /// may create unix sockets (`unix_sockets`) and the proxy is root.
    public static let socketDirectories = ["/run", "/var/run", "/tmp", "/var/tmp", "/dev/shm"]

    /// Why `path` may not be written by a sandboxed server (a system directory, or a home
    /// directory other than the proxy user's `home`), or nil.
    static func systemDirectory(_ path: String, home: String) -> String? {
        let p = normalized(path)
        if p == "/" { return "the root directory" }
        if p == "/home" { return "the directory of every user's home" }
        for d in systemDirectories where isWithin(p, d) { return d == p ? "the system directory \(d)" : "inside the system directory \(d)" }
        if isWithin(p, "/home"), !isWithin(p, home) {
            let owner = p.split(separator: "/").dropFirst().first.map(String.init) ?? ""
            return "inside another user's home (/home/\(owner))"
        }
        return nil
    }

    /// The uid of server `name`: a slot in `range` chosen by a hash of the name, probing past
    /// slots taken by configured servers that sort before it. Stable for a given config, and
    /// different for every server in it.
    static func serverUID(_ name: String, servers: [String], range: (first: UInt32, count: UInt32)) throws -> UInt32 {
        var all = Set(servers)
        all.insert(name)
        guard UInt64(all.count) <= UInt64(range.count) else {
            throw ProxyError(.invalidConfig, "sandbox.uid_range holds \(range.count) uids, fewer than the \(all.count) servers; widen it")
        }
        var taken = Set<UInt32>()
        for n in all.sorted() {
            var slot = UInt32(fnv1a(n) % UInt64(range.count))
            while taken.contains(slot) { slot = slot &+ 1 == range.count ? 0 : slot + 1 }
            taken.insert(slot)
            if n == name { return range.first + slot }
        }
        return range.first  // unreachable: name is in `all`
    }

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return h
    }
}

import Foundation
import ProxyCore
#if canImport(Glibc)
import Glibc
#endif

/// The network of a sandboxed server with `egress` (docs/egress.md), made by the proxy (root)
/// before the launcher starts: a named network namespace (`/run/netns/<name>`, which the launcher
/// joins with `--net netns:<path>`) whose only interface besides `lo` is one end of a veth pair;
/// the other end stays on the host with the gateway's address, where the egress proxy listens.
/// Each pair gets its own /30 from 198.18.0.0/15 (RFC 2544's benchmarking range, which real
/// networks do not route); the namespace has no default route, so nothing but the gateway's
/// address is reachable from inside, and the host firewall (`EgressFence`) admits only the
/// proxy's port there.
public enum SandboxEgress {
    static let lock = NSLock()
    nonisolated(unsafe) static var inUse: Set<UInt32> = []

    static func ip() -> String? {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The /30 numbered `index` in 198.18.0.0/15 (32768 of them): (host side, namespace side).
    public static func subnet(_ index: UInt32) -> (host: String, inside: String) {
        let base: UInt32 = 0xc612_0000 + (index % 32768) * 4
        return (IPAddress.v4(base + 1).description, IPAddress.v4(base + 2).description)
    }

    /// Creates the namespace and veth of `egress`; returns it with `gateway` set.
    public static func create(_ egress: EgressPlan, server: String) throws -> EgressPlan {
        guard let ip = ip() else {
            throw ProxyError(.unavailable, "server \"\(server)\": egress in sandbox mode needs the ip command (iproute2), not found in /usr/sbin, /sbin, /usr/bin, /bin")
        }
        remove(egress)
        let own = Set(ownIPv4())
        let index: UInt32 = lock.withLock {
            var i = UInt32(truncatingIfNeeded: egress.network.hashValue.magnitude) % 32768
            for _ in 0..<32768 {
                let (h, n) = subnet(i)
                if !inUse.contains(i), !own.contains(h), !own.contains(n) { break }
                i = (i + 1) % 32768
            }
            inUse.insert(i)
            return i
        }
        let (host, inside) = subnet(index)
        let steps: [[String]] = [
            ["netns", "add", egress.network],
            ["link", "add", egress.hostInterface, "type", "veth", "peer", "name", "eth0", "netns", egress.network],
            ["addr", "add", "\(host)/30", "dev", egress.hostInterface],
            ["link", "set", egress.hostInterface, "up"],
            ["-n", egress.network, "addr", "add", "\(inside)/30", "dev", "eth0"],
            ["-n", egress.network, "link", "set", "eth0", "up"],
            ["-n", egress.network, "link", "set", "lo", "up"],
        ]
        for step in steps {
            let r = CommandRunner.runBlocking(ip, step, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], timeout: 10)
            if r.status != 0 {
                remove(egress)
                release(host)
                throw ProxyError(.unavailable, "server \"\(server)\": cannot set up the egress network namespace (ip \(step.joined(separator: " ")): \(CommandRunner.lastLine(r.stderr) ?? "status \(r.status)"))")
            }
        }
        var out = egress
        out.gateway = host
        return out
    }

    static func release(_ host: String) {
        guard case .v4(let a) = IPAddress(host) else { return }
        let index = (a - 0xc612_0000 - 1) / 4
        _ = lock.withLock { inUse.remove(index) }
    }

    /// Removes the namespace (its veth pair goes with it) and the firewall rules.
    public static func remove(_ egress: EgressPlan) {
        EgressFence.remove(egress)
        guard let ip = ip() else { return }
        let env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        _ = CommandRunner.runBlocking(ip, ["netns", "del", egress.network], environment: env, timeout: 10)
        _ = CommandRunner.runBlocking(ip, ["link", "del", egress.hostInterface], environment: env, timeout: 10)
        if let g = egress.gateway { release(g) }
    }

    /// Namespaces `mcpx-<pid>-<id>` whose proxy pid is gone (a proxy killed before its cleanup),
    /// with their veth pairs; returns their names.
    public static func cleanupOrphans(log: (String) -> Void) -> [String] {
        guard geteuid() == 0, let ip = ip(),
              let names = try? FileManager.default.contentsOfDirectory(atPath: "/run/netns") else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix(EgressPlan.sandboxNetnsPrefix) {
            let parts = name.dropFirst(EgressPlan.sandboxNetnsPrefix.count).split(separator: "-")
            guard parts.count == 2, let pid = Int32(parts[0]) else { continue }
            if pid == getpid() || ContainerLifecycle.processIsAlive(pid, nil) { continue }
            log("removing egress network namespace \(name): its proxy (pid \(pid)) is no longer running")
            _ = CommandRunner.runBlocking(ip, ["netns", "del", name], environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], timeout: 10)
            removed.append(name)
        }
        EgressFence.removeStale()
        return removed
    }

    static func ownIPv4() -> [String] {
        var out: [String] = []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return out }
        defer { freeifaddrs(first) }
        var p: UnsafeMutablePointer<ifaddrs>? = first
        while let i = p {
            if let sa = i.pointee.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET) {
                let v = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
                out.append(IPAddress.v4(v).description)
            }
            p = i.pointee.ifa_next
        }
        return out
    }
}

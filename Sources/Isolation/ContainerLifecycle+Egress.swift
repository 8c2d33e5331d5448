import Foundation
import ProxyCore
#if canImport(Glibc)
import Glibc
#endif

/// The egress network of a container launch (docs/egress.md): created before the container,
/// `--internal` (the engine gives it no route out), labelled like the container so orphan
/// cleanup removes it, with a bridge name of our choosing so the host firewall can name it;
/// removed after the container.
extension ContainerLifecycle {
    /// `network create` arguments for `engine`.
    static func egressNetworkCreate(_ egress: EgressPlan, engine: ContainerEngine) -> [String] {
        var args = ["network", "create", "--internal", "--driver", "bridge"]
        // podman 4.3 cannot name the bridge (no --interface-name, no bridge.name option): its name
        // is read back after creation. Its DNS server stays: an internal network without it gets
        // no gateway address (aardvark listens there; the fence drops it).
        if engine.name != "podman" {
            args += ["--opt", "com.docker.network.bridge.name=\(egress.hostInterface)"]
        }
        for key in egress.labels.keys.sorted() { args += ["--label", "\(key)=\(egress.labels[key]!)"] }
        return args + [egress.network]
    }

    /// The `network inspect --format` that prints a network's gateway address.
    static func gatewayFormat(_ engine: ContainerEngine) -> String {
        engine.name == "podman" ? "{{.NetworkInterface}} {{range .Subnets}}{{.Gateway}} {{end}}" : "{{range .IPAM.Config}}{{.Gateway}} {{end}}"
    }

    /// Creates the plan's egress network and returns the plan with `egress.gateway` set.
    public static func prepareEgress(_ plan: LaunchPlan, engine: ContainerEngine? = nil) async throws -> LaunchPlan {
        guard var egress = plan.egress, plan.container != nil else { return plan }
        let engine = engine ?? self.engine(of: plan)
        let server = plan.container?.labels[DockerPlanner.Label.server] ?? "?"
        let env = plan.environment
        _ = await engine.run(["network", "rm", egress.network], environment: env, timeout: 30)
        let created = await engine.run(egressNetworkCreate(egress, engine: engine), environment: env, timeout: 30)
        guard created.status == 0 else {
            throw ProxyError(.unavailable, "server \"\(server)\": cannot create the egress network \(egress.network): \(CommandRunner.lastLine(created.stderr) ?? "\(engine.name) network create exited with status \(created.status)")")
        }
        let inspect = await engine.run(["network", "inspect", "--format", gatewayFormat(engine), egress.network], environment: env, timeout: 30)
        let gateway = inspect.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" })
            .map(String.init).first { if case .v4 = IPAddress($0) { return true } else { return false } }
        guard inspect.status == 0, let gateway else {
            _ = await engine.run(["network", "rm", egress.network], environment: env, timeout: 30)
            throw ProxyError(.unavailable, "server \"\(server)\": the egress network \(egress.network) has no IPv4 gateway address (\(engine.name) network inspect: \(CommandRunner.lastLine(inspect.stderr) ?? inspect.stdout))")
        }
        egress.gateway = gateway
        if engine.name == "podman", let name = inspect.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).first,
           IPAddress(String(name)) == nil {
            egress.hostInterface = String(name)
        }
        var out = plan
        out.egress = egress
        return out
    }

    /// Removes managed egress networks of dead owners (the container rule of `selectOrphans`).
    /// Returns the removed network names.
    public static func cleanupOrphanNetworks(instanceID: String, environment: [String: String], engine: ContainerEngine,
                                             owner: ContainerOwner = .probe(pid: getpid()),
                                             log: @escaping @Sendable (String) -> Void) async -> [String] {
        let ls = await engine.run(["network", "ls", "-q", "--filter", "label=\(EgressPlan.networkLabel)=true"],
                                  environment: environment, timeout: 30)
        await Blocking.run { EgressFence.removeStale() }
        let ids = ls.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard ls.status == 0, !ids.isEmpty else { return [] }
        let inspect = await engine.run(["network", "inspect", "--format", "{{.Name}}\t{{json .Labels}}"] + ids,
                                       environment: environment, timeout: 30)
        let decisions = selectOrphans(parseInspectLabels(inspect.stdout), instanceID: instanceID, host: owner.host,
                                      bootID: owner.bootID, isAlive: { processIsAlive($0, $1) })
        var removed: [String] = []
        for d in decisions where d.remove {
            log("removing egress network \(d.id) (\(engine.name), server \(d.server ?? "?")): \(d.reason)")
            let r = await engine.run(["network", "rm", d.id], environment: environment, timeout: 30)
            if r.status == 0 { removed.append(d.id) }
        }
        await Blocking.run { EgressFence.removeStale() }
        return removed
    }
}

/// The host firewall around an egress network (iptables, as root): from the network's host
/// interface only TCP to the proxy's address and port is accepted; every other packet to the
/// host itself (the gateway's MCP port, metrics, ssh, DNS) is dropped, over IPv4 and IPv6.
/// Without root or iptables nothing is installed and the enforcement report says what the
/// server can then reach.
public enum EgressFence {
    static let comment = "mcpproxy-egress"

    static func rules(_ egress: EgressPlan, port: Int) -> [(tool: String, spec: [String])] {
        let base = ["INPUT", "-i", egress.hostInterface, "-m", "comment", "--comment", comment]
        return [
            ("iptables", base + ["-p", "tcp", "-d", egress.gateway ?? "0.0.0.0", "--dport", String(port), "-j", "ACCEPT"]),
            ("iptables", base + ["-j", "DROP"]),
            ("ip6tables", base + ["-j", "DROP"]),
        ]
    }

    static func tool(_ name: String) -> String? {
        ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"].map { $0 + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Installs the rules; returns the `proxy_port` enforcement text.
    public static func install(_ egress: EgressPlan, port: Int) -> String {
        let unfenced = "not fenced: the server can reach every port the gateway host listens on at \(egress.gateway ?? "its gateway address") (listeners bound to 127.0.0.1 stay unreachable)"
        guard geteuid() == 0 else { return "\(unfenced); the firewall needs root" }
        var installed = 0
        // Inserted at the top in reverse, so the ACCEPT comes before the DROPs.
        for rule in rules(egress, port: port).reversed() {
            guard let exe = tool(rule.tool) else { continue }
            let r = CommandRunner.runBlocking(exe, ["-w", "-I"] + rule.spec.prefix(1) + ["1"] + rule.spec.dropFirst(), environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], timeout: 10)
            if r.status == 0 { installed += 1 }
        }
        if installed == 0 { return "\(unfenced); iptables is missing or failed" }
        return "fenced: from \(egress.hostInterface) only tcp \(egress.gateway ?? "?"):\(port) (the egress proxy) reaches the host"
    }

    /// Removes the rules of `egress` (every port).
    public static func remove(_ egress: EgressPlan) {
        guard geteuid() == 0 else { return }
        removeRules { $0.contains("-i \(egress.hostInterface) ") }
    }

    /// Removes rules whose interface no longer exists (a proxy killed before its cleanup).
    public static func removeStale() {
        guard geteuid() == 0 else { return }
        removeRules { line in
            guard let r = line.range(of: "-i ") else { return false }
            let name = line[r.upperBound...].prefix { $0 != " " }
            return !FileManager.default.fileExists(atPath: "/sys/class/net/\(name)")
        }
    }

    static func removeRules(_ matching: (String) -> Bool) {
        for t in ["iptables", "ip6tables"] {
            guard let exe = tool(t) else { continue }
            let env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
            let list = CommandRunner.runBlocking(exe, ["-w", "-S", "INPUT"], environment: env, timeout: 10)
            for line in list.stdout.split(separator: "\n").map(String.init) where line.contains(comment) && matching(line) {
                // "-A INPUT ..." → "-D INPUT ...": the words are ours (no quoting beyond the comment).
                let words = line.split(separator: " ").map { String($0).replacingOccurrences(of: "\"", with: "") }
                guard words.first == "-A" else { continue }
                _ = CommandRunner.runBlocking(exe, ["-w", "-D"] + words.dropFirst(), environment: env, timeout: 10)
            }
        }
    }
}

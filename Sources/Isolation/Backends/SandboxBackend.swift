import Foundation
import ProxyCore

/// Mode `sandbox`: the `mcpproxy-sandbox` launcher confines the server (Landlock, seccomp,
/// namespaces, rlimits, a uid of its own, cgroups) and then execs it; see docs/sandbox.md. The
/// launcher is the process, so stopping it is the process's stop ladder; what remains after is
/// the launch's cgroups, removed here.
public struct SandboxBackend: IsolationBackend {
    public init() {}
    public var mode: IsolationMode { .sandbox }

    /// The launch's own cgroup (the launcher makes one per launch), else the process.
    public func resources(_ plan: LaunchPlan, handle: String?, pid: Int32?) async -> ResourceSource {
        plan.cgroupDirectories.isEmpty ? (pid.map { .process($0) } ?? .unknown) : .cgroup(plan.cgroupDirectories)
    }

    public func plan(server: ServerConfig, command: String, config: ProxyConfig, decision: IsolationDecision,
                     context: LaunchContext) throws -> LaunchPlan {
        try SandboxPlanner.plan(server: server, command: command, config: config, decision: decision, context: context)
    }

    public func settingsChanged(from old: ProxyConfig, to new: ProxyConfig) -> Bool { old.sandbox != new.sandbox }

    /// The plan's files, and the egress network namespace when the server has `egress`.
    public func prepare(_ plan: LaunchPlan, log: @escaping @Sendable (String) -> Void) async throws -> LaunchPlan {
        try PlannedFiles.write(plan)
        guard let egress = plan.egress else { return plan }
        var out = plan
        let server = egress.labels["mcpproxy.server"] ?? "?"
        out.egress = try await Blocking.run { try SandboxEgress.create(egress, server: server) }
        log("egress: network namespace \(egress.network), gateway \(out.egress?.gateway ?? "?") on \(egress.hostInterface)")
        return out
    }

    /// Namespaces of dead proxies (their names carry the proxy's pid).
    public func cleanupOrphans(instanceID: String, config: ProxyConfig, environment: [String: String],
                               log: @escaping @Sendable (String) -> Void) async -> Int {
        await Blocking.run { SandboxEgress.cleanupOrphans(log: log).count }
    }

    public func cleanUp(_ plan: LaunchPlan) async -> [String] {
        await Blocking.run {
            PlannedFiles.remove(plan)
            if let egress = plan.egress { SandboxEgress.remove(egress) }
            return plan.cgroupDirectories.filter { !SandboxCgroup.remove($0) }.map {
                "cgroup \($0) of the stopped server could not be removed"
            }
        }
    }
}

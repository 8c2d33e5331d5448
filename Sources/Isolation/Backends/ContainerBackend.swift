import Foundation
import ProxyCore
#if canImport(Glibc)
import Glibc
#endif

/// Mode `docker`: the server runs in a hardened container (`DockerPlanner`), started by the
/// engine CLI (`isolation.engine`: docker or podman) with the OCI runtime of
/// `isolation.oci_runtime` (runc or gVisor's runsc). The spawned process is the engine client
/// (`docker run -i`); the container's own lifecycle is `ContainerLifecycle`'s, per engine.
public struct ContainerBackend: IsolationBackend {
    private let cgroups = ContainerCgroupCache()
    public init() {}
    public var mode: IsolationMode { .docker }

    public func plan(server: ServerConfig, command: String, config: ProxyConfig, decision: IsolationDecision,
                     context: LaunchContext) throws -> LaunchPlan {
        try DockerPlanner.plan(server: server, command: command, config: config, decision: decision, context: context)
    }

    public func startupTimeout(_ config: ProxyConfig) -> Double { config.dockerIsolation.timeout }

    public func settingsChanged(from old: ProxyConfig, to new: ProxyConfig) -> Bool { old.dockerIsolation != new.dockerIsolation }

    /// The line the troubleshooting guide greps for: `docker_run_args: ["run", ...]`.
    public func launchLogLine(_ plan: LaunchPlan) -> String { DockerPlanner.runArgsLogLine(plan) }

    public func prepare(_ plan: LaunchPlan, log: @escaping @Sendable (String) -> Void) async throws -> LaunchPlan {
        let prepared = try await ContainerLifecycle.prepare(plan, log: log)
        return try await ContainerLifecycle.prepareEgress(prepared)
    }

    /// The container's own cgroup (the process the proxy holds is only the engine's client).
    public func resources(_ plan: LaunchPlan, handle: String?, pid: Int32?) async -> ResourceSource {
        guard let handle, let dirs = await cgroups.directories(container: handle, plan: plan) else { return .unknown }
        return .cgroup(dirs)
    }

    /// In the image, not on this host.
    public func checkCommand(_ plan: LaunchPlan, command: String, hostEnvironment: [String: String]) async -> CommandCheck {
        await ContainerLifecycle.checkCommand(plan)
    }

    public func started(_ plan: LaunchPlan, timeout: Double) async -> String? {
        await ContainerLifecycle.containerID(plan, timeout: timeout)
    }

    /// The server answered `initialize`: the launcher read the secret file before exec, so it is
    /// deleted and no longer visible inside the container.
    public func initialized(_ plan: LaunchPlan) {
        plan.secrets?.removeFile()
    }

    public func stop(_ plan: LaunchPlan, handle: String?, grace: Double) async {
        await ContainerLifecycle.stop(plan, containerID: handle, grace: grace)
    }

    /// The plan's files, its secrets directory, and its egress network once the container is gone.
    public func cleanUp(_ plan: LaunchPlan) async -> [String] {
        PlannedFiles.remove(plan)
        plan.secrets?.removeDirectory()
        guard let egress = plan.egress, plan.container != nil else { return [] }
        let engine = ContainerLifecycle.engine(of: plan)
        await Blocking.run { EgressFence.remove(egress) }
        for _ in 0..<40 {
            let r = await engine.run(["network", "rm", egress.network], environment: plan.environment, timeout: 10)
            let text = r.stderr.lowercased()
            if r.status == 0 || text.contains("not found") || text.contains("no such") { return [] }
            try? await Task.sleep(nanoseconds: 250_000_000)
        }
        return ["the egress network \(egress.network) could not be removed (still in use?); orphan cleanup removes it at the next start"]
    }

    public func diagnose(_ plan: LaunchPlan, handle: String?, exitStatus: Int32, stderrTail: [String]) async -> String? {
        await ContainerLifecycle.diagnose(plan, containerID: handle, exitStatus: exitStatus, stderrTail: stderrTail)
    }

    /// Orphan cleanup on every engine the config uses (docker always, as before engines were
    /// configurable), each only when its CLI is installed.
    public func cleanupOrphans(instanceID: String, config: ProxyConfig, environment: [String: String],
                               log: @escaping @Sendable (String) -> Void) async -> Int {
        var removed = 0
        // Secret directories of proxies that died (logged; the count is of containers).
        if let base = SecretDelivery.baseDirectory() {
            for name in SecretDelivery.cleanupOrphans(base: base) {
                log("removed the secret directory \(base)/\(name): its proxy is gone")
            }
        }
        for engine in Self.engines(in: config) where engine.executable() != nil {
            removed += await ContainerLifecycle.cleanupOrphans(instanceID: instanceID, environment: environment,
                                                               engine: engine, log: log).count
            removed += await ContainerLifecycle.cleanupOrphanNetworks(instanceID: instanceID, environment: environment,
                                                                      engine: engine, log: log).count
        }
        return removed
    }

    public func scannerPluginSkipReason(_ plugin: ScannerPluginConfig) -> String? { nil }

    /// The engines `config` names (globally or for any server), docker first.
    public static func engines(in config: ProxyConfig) -> [ContainerEngine] {
        var names = [ContainerEngines.defaultName]
        for name in [Optional(config.dockerIsolation.engine)] + config.servers.map({ $0.isolation?.engine }) {
            if let name, !names.contains(name) { names.append(name) }
        }
        return names.compactMap(ContainerEngines.named)
    }
}

import ArgumentParser
import Foundation
import Gateway
import Isolation
import Logging
import ProxyCore
import Upstream

/// The container hooks of docker isolation for the Upstream layer: each call goes to
/// `ContainerLifecycle` (prepare before the startup timer, container id after spawn, the stop
/// ladder, exit diagnosis). Plans of other modes carry no container and pass through untouched.
public struct DockerContainerHooks: ContainerHooks {
    public init() {}
    public func prepare(_ plan: LaunchPlan, log: @escaping @Sendable (String) -> Void) async throws {
        try await ContainerLifecycle.prepare(plan, log: log)
    }
    public func containerID(_ plan: LaunchPlan, timeout: Double) async -> String? {
        await ContainerLifecycle.containerID(plan, timeout: timeout)
    }
    public func stop(_ plan: LaunchPlan, containerID: String?, grace: Double) async {
        await ContainerLifecycle.stop(plan, containerID: containerID, grace: grace)
    }
    public func diagnose(_ plan: LaunchPlan, containerID: String?, exitStatus: Int32, stderrTail: [String]) async -> String? {
        await ContainerLifecycle.diagnose(plan, containerID: containerID, exitStatus: exitStatus, stderrTail: stderrTail)
    }

    /// A `beforeStart` hook: removes orphaned mcpproxy containers (this instance's, or those of a
    /// dead proxy on this host) before any server starts. Silent when no docker CLI is installed.
    public static let cleanupAtStart: @Sendable (ProxyRuntime) async -> Void = { runtime in
        let env = ProcessInfo.processInfo.environment
        guard ContainerLifecycle.resolveExecutable("docker", path: env["PATH"]) != nil else { return }
        let logger = runtime.logger
        let removed = await ContainerLifecycle.cleanupOrphans(instanceID: runtime.instanceID, environment: env,
                                                              log: { logger.info("container cleanup: \($0)") })
        if !removed.isEmpty { logger.warning("removed \(removed.count) orphaned mcpproxy container(s) left by a proxy that is gone") }
    }
}

/// `mcpproxy containers`: inspect and clean up the containers docker isolation started.
public struct ContainersCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "containers",
        abstract: "List or remove the containers that docker isolation started.",
        subcommands: [List.self, Cleanup.self],
        defaultSubcommand: List.self
    )

    public init() {}

    /// `mcpproxy containers list`: every mcpproxy-managed container and whether cleanup would
    /// remove it.
    public struct List: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "List containers labelled mcpproxy.managed=true and their owners' state.")

        @Flag(name: .long, help: "Print JSON.") var json = false

        public init() {}

        public func run() async throws {
            let report = await ContainerLifecycle.cleanupOrphans(
                instanceID: "", environment: ProcessInfo.processInfo.environment, dryRun: true,
                log: { _ in })
            if let problem = report.problem { throw ProxyError(.unavailable, problem) }
            if json {
                let list: [JSONValue] = report.decisions.map { d in
                    ["id": .string(d.id), "server": d.server.map { .string($0) } ?? .null,
                     "state": .string(d.remove ? "orphan" : "owned"), "reason": .string(d.reason)]
                }
                print(JSONValue.object(["containers": .array(list)]).serialized())
                return
            }
            if report.decisions.isEmpty { print("no mcpproxy-managed containers"); return }
            for d in report.decisions {
                print("\(d.id.prefix(12))  \(d.server ?? "?")  \(d.remove ? "orphan" : "owned"): \(d.reason)")
            }
        }
    }

    /// `mcpproxy containers cleanup`: removes managed containers whose proxy is dead (and, with
    /// `--instance`, those of that proxy instance). Never by name prefix, never a live proxy's.
    public struct Cleanup: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Remove mcpproxy-managed containers whose proxy is no longer running.",
            discussion: """
            A container is removed when its labels say its proxy ran on this host and that proxy \
            is gone (another boot, a dead pid, or a pid now used by another process), or when it \
            belongs to the instance given with --instance. Containers of live proxies, of other \
            hosts, or without owner labels are kept.
            """)

        @Option(name: .long, help: "Also remove the containers of this proxy instance id (only when that proxy is stopped).")
        public var instance: String = ""

        @Flag(name: .long, help: "Show what would be removed without removing anything.")
        public var dryRun = false

        public init() {}

        public func run() async throws {
            let report = await ContainerLifecycle.cleanupOrphans(
                instanceID: instance, environment: ProcessInfo.processInfo.environment, dryRun: dryRun,
                log: { print($0) })
            if let problem = report.problem { throw ProxyError(.unavailable, problem) }
            if report.decisions.isEmpty { print("no mcpproxy-managed containers") }
            else if !dryRun { print("removed \(report.removed.count) container(s)") }
        }
    }
}

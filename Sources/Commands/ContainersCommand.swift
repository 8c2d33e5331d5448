import ArgumentParser
import Foundation
import Gateway
import Isolation
import Logging
import ProxyCore
import Upstream

/// `mcpproxy containers`: inspect and clean up the containers docker isolation started, on each
/// container engine (docker, podman) whose CLI is installed, or on the one given with `--engine`.
public struct ContainersCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "containers",
        abstract: "List or remove the containers that docker isolation started (on docker and podman).",
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

        @Option(name: .long, help: "Only this container engine (docker or podman); default: every installed one.")
        public var engine: String?

        public init() {}

        public func run() async throws {
            var rows: [(engine: String, decision: ContainerLifecycle.OrphanDecision)] = []
            for e in try ContainersCommand.engines(engine) {
                let report = await ContainerLifecycle.cleanupOrphans(
                    instanceID: "", environment: ProcessSettings.current.environment, dryRun: true, engine: e,
                    log: { _ in })
                if let problem = report.problem { throw ProxyError(.unavailable, problem) }
                rows += report.decisions.map { (e.name, $0) }
            }
            if json {
                let list: [JSONValue] = rows.map { r in
                    let d = r.decision
                    return ["id": .string(d.id), "engine": .string(r.engine), "server": d.server.map { .string($0) } ?? .null,
                            "state": .string(d.remove ? "orphan" : "owned"), "reason": .string(d.reason)]
                }
                print(JSONValue.object(["containers": .array(list)]).serialized())
                return
            }
            if rows.isEmpty { print("no mcpproxy-managed containers"); return }
            for r in rows {
                let d = r.decision
                print("\(d.id.prefix(12))  \(r.engine)  \(d.server ?? "?")  \(d.remove ? "orphan" : "owned"): \(d.reason)")
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

        @Option(name: .long, help: "Only this container engine (docker or podman); default: every installed one.")
        public var engine: String?

        public init() {}

        public func run() async throws {
            var seen = 0, removed = 0
            for e in try ContainersCommand.engines(engine) {
                let report = await ContainerLifecycle.cleanupOrphans(
                    instanceID: instance, environment: ProcessSettings.current.environment, dryRun: dryRun, engine: e,
                    log: { print($0) })
                if let problem = report.problem { throw ProxyError(.unavailable, problem) }
                seen += report.decisions.count
                removed += report.removed.count
            }
            if seen == 0 { print("no mcpproxy-managed containers") }
            else if !dryRun { print("removed \(removed) container(s)") }
        }
    }

    /// The engine named `name` (an error naming the known ones otherwise), or every engine whose
    /// CLI is installed; docker alone when none is (its "not found" is then the report).
    static func engines(_ name: String?) throws -> [ContainerEngine] {
        if let name {
            guard let e = ContainerEngines.named(name) else {
                throw ValidationError("unknown container engine \"\(name)\" (known: \(ContainerEngines.all.map(\.name).joined(separator: ", ")))")
            }
            return [e]
        }
        let installed = ContainerEngines.all.filter { $0.executable() != nil }
        return installed.isEmpty ? [.docker] : installed
    }
}

import Foundation

/// The isolation mode chosen for one server and why.
public struct IsolationDecision: Sendable, Equatable, CustomStringConvertible {
    /// Where the decision came from; stable strings for logs, the API and `mcpproxy doctor`.
    public enum Source: String, Sendable, Equatable {
        case perServerMode = "per-server mode"
        case perServerLegacyEnabled = "per-server legacy enabled"
        case globalMode = "global mode"
        case globalLegacyEnabled = "global legacy enabled"
        case defaultNone = "no isolation configured"
        case dockerCommandSkipped = "docker command skipped"
        case notStdio = "not a stdio server"
    }
    public var mode: IsolationMode
    public var source: Source
    public var reason: String { source.rawValue }
    public var description: String { "\(mode.rawValue) (\(source.rawValue))" }

    public init(mode: IsolationMode, source: Source) {
        self.mode = mode
        self.source = source
    }
}

/// Resolves a server's isolation mode (seed 001): explicit per-server mode → per-server legacy
/// `enabled` → global mode → global legacy `enabled` → none. Servers that are not stdio, and
/// servers whose command is `docker` (Docker-in-Docker), always get `none`.
public enum IsolationResolver {
    public static func resolve(_ server: ServerConfig, global: DockerIsolationConfig) -> IsolationDecision {
        if server.effectiveProtocol != .stdio || server.command == nil {
            return .init(mode: .none, source: .notStdio)
        }
        if let command = server.command, isDockerCommand(command) {
            return .init(mode: .none, source: .dockerCommandSkipped)
        }
        if let mode = server.isolation?.mode { return .init(mode: mode, source: .perServerMode) }
        if let enabled = server.isolation?.enabled {
            return .init(mode: enabled ? .docker : .none, source: .perServerLegacyEnabled)
        }
        if let mode = global.mode { return .init(mode: mode, source: .globalMode) }
        if let enabled = global.enabled {
            return .init(mode: enabled ? .docker : .none, source: .globalLegacyEnabled)
        }
        return .init(mode: .none, source: .defaultNone)
    }

    /// True for `docker`, `/usr/bin/docker`, `docker.exe`, and `podman`-free docker wrappers
    /// named exactly docker.
    public static func isDockerCommand(_ command: String) -> Bool {
        var base = (command as NSString).lastPathComponent.lowercased()
        if base.hasSuffix(".exe") { base = String(base.dropLast(4)) }
        return base == "docker"
    }
}

import Foundation
import ProxyCore

/// Turns a server's config into a launch plan, through the backend of its isolation mode.
public enum Launcher {
    /// The isolation modes that enforce a server's `egress` allowlist.
    public static let egressModes: Set<IsolationMode> = [.docker, .sandbox]

    /// Plans the launch of stdio server `server` under `config`. Throws `.refused` when the
    /// isolation policy forbids what the server asks for, `.unsupported` when the mode cannot run.
    public static func plan(server: ServerConfig, config: ProxyConfig, context: LaunchContext,
                            backends: IsolationBackends = .standard) throws -> LaunchPlan {
        guard let command = server.command else {
            throw ProxyError(.invalidConfig, "server \"\(server.name)\" has no command to launch")
        }
        let decision = IsolationResolver.resolve(server, global: config.dockerIsolation)
        if server.egress != nil, !egressModes.contains(decision.mode) {
            // An allowlist that nothing enforces would be a promise the proxy cannot keep.
            throw ProxyError(.invalidConfig, "server \"\(server.name)\": egress needs isolation mode \(egressModes.map(\.rawValue).sorted().joined(separator: " or ")) (this server runs in mode \(decision.mode.rawValue): \(decision.reason)); set isolation.mode, or remove egress")
        }
        return try backends.backend(for: decision.mode).plan(server: server, command: command, config: config,
                                                             decision: decision, context: context)
    }
}

/// Expands a leading `~` to `home`.
public func expandTilde(_ path: String, home: String) -> String {
    if path == "~" { return home }
    if path.hasPrefix("~/") { return home + String(path.dropFirst(1)) }
    return path
}

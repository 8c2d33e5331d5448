import Foundation
import ProxyCore

/// Turns a server's config into a launch plan, choosing the planner by isolation mode.
public enum Launcher {
    /// Plans the launch of stdio server `server` under `config`. Throws `.refused` when the
    /// isolation policy forbids what the server asks for, `.unsupported` when the mode cannot run.
    public static func plan(server: ServerConfig, config: ProxyConfig, context: LaunchContext) throws -> LaunchPlan {
        guard let command = server.command else {
            throw ProxyError(.invalidConfig, "server \"\(server.name)\" has no command to launch")
        }
        let decision = IsolationResolver.resolve(server, global: config.dockerIsolation)
        switch decision.mode {
        case .none:
            return NonePlanner.plan(server: server, command: command, decision: decision, context: context)
        case .docker:
            return try DockerPlanner.plan(server: server, command: command, config: config, decision: decision, context: context)
        case .sandbox:
            return try SandboxPlanner.plan(server: server, command: command, config: config, decision: decision, context: context)
        }
    }
}

/// Mode `none`: the server runs directly on the host, with an allowlisted environment.
public enum NonePlanner {
    public static func plan(server: ServerConfig, command: String, decision: IsolationDecision,
                            context: LaunchContext) -> LaunchPlan {
        let env = EnvironmentPolicy.serverEnvironment(host: context.hostEnvironment, declared: server.env)
        let argv = [command] + server.args
        return LaunchPlan(executable: command, arguments: server.args, environment: env,
                          workingDirectory: server.workingDir.map { expandTilde($0, home: context.homeDir) },
                          decision: decision,
                          redactedCommandLine: Redactor.redactEnvAssignments(argv, secrets: server.env),
                          enforcement: ["isolation": "none"])
    }
}

/// Expands a leading `~` to `home`.
public func expandTilde(_ path: String, home: String) -> String {
    if path == "~" { return home }
    if path.hasPrefix("~/") { return home + String(path.dropFirst(1)) }
    return path
}

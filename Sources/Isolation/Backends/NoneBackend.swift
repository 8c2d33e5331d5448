import Foundation
import ProxyCore

/// Mode `none`: the server runs directly on the host, with an allowlisted environment. Nothing
/// to prepare besides the plan's files, nothing to observe or stop besides the process.
public struct NoneBackend: IsolationBackend {
    public init() {}
    public var mode: IsolationMode { .none }

    public func plan(server: ServerConfig, command: String, config: ProxyConfig, decision: IsolationDecision,
                     context: LaunchContext) throws -> LaunchPlan {
        NonePlanner.plan(server: server, command: command, decision: decision, context: context)
    }
}

/// Mode `none`'s planner (pure).
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

import Foundation
import ProxyCore

/// Mode `sandbox`: runs the server under the `mcpproxy-sandbox` launcher.
public enum SandboxPlanner {
    public static func plan(server: ServerConfig, command: String, config: ProxyConfig,
                            decision: IsolationDecision, context: LaunchContext) throws -> LaunchPlan {
        throw ProxyError(.unsupported, "server \"\(server.name)\": sandbox isolation is not implemented yet")
    }
}

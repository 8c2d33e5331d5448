import Foundation
import ProxyCore

/// Mode `docker`: wraps the server in a hardened `docker run -i --rm`.
public enum DockerPlanner {
    public static func plan(server: ServerConfig, command: String, config: ProxyConfig,
                            decision: IsolationDecision, context: LaunchContext) throws -> LaunchPlan {
        throw ProxyError(.unsupported, "server \"\(server.name)\": docker isolation is not implemented yet")
    }
}

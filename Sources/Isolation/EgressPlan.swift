import Foundation
import ProxyCore

/// The egress side of a launch (server key `egress`, docs/egress.md): the allowlist, the
/// network the server runs on and, once `prepare` has created it, the address the gateway's
/// forwarding proxy listens on there. Planning fills the names; the doing side (the container
/// backend's `prepare`) fills `gateway`; the Upstream supervisor opens the proxy listener and
/// sets `proxyURL`.
public struct EgressPlan: Sendable, Equatable {
    /// The allowlist.
    public var policy: EgressPolicy
    /// The per-launch internal network (container engines) or network namespace (sandbox).
    public var network: String
    /// The host-side interface name of that network (a Linux bridge or veth, ≤ 15 characters),
    /// so the host firewall can name it.
    public var hostInterface: String
    /// Labels of the network (the container's, so orphan cleanup removes it with the same rule).
    public var labels: [String: String]
    /// The gateway's address on that network, where the proxy listens; nil until prepared.
    public var gateway: String? = nil
    /// `http://<gateway>:<port>` once the proxy listens.
    public var proxyURL: String? = nil
    /// What the host firewall does for this network (`enforcement["proxy_port"]`), once prepared.
    public var fence: String? = nil
    /// Put before each proxy variable's name in the launch environment (the sandbox launcher's
    /// `MCPX_SANDBOX_ENV_`; "" for a container engine's client).
    public var variablePrefix: String = ""

    /// The variables that point HTTP clients at the proxy (both spellings: curl reads only the
    /// lower-case `http_proxy`, Go and Python read both).
    public static let proxyVariables = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"]

    /// Label set on egress networks (besides the container's owner labels).
    public static let networkLabel = "mcpproxy.egress"

    /// The plan for a container launch: network `mcpproxy-egress-<launch id>`, bridge
    /// `mcpxe<launch id>`.
    public static func forContainer(server: String, launchID: String, rules: [EgressRule], labels: [String: String]) -> EgressPlan {
        var l = labels
        l[networkLabel] = "true"
        let id = String(launchID.filter { $0.isASCII && ($0.isLetter || $0.isNumber) }.prefix(10))
        return EgressPlan(policy: EgressPolicy(rules), network: "mcpproxy-egress-\(id)", hostInterface: "mcpxe\(id)", labels: l)
    }

    /// The plan for a sandbox launch: network namespace `mcpx-<proxy pid>-<launch id>` (the pid
    /// lets orphan cleanup tell a dead proxy's namespaces), host-side veth `mcpxs<launch id>`.
    public static func forSandbox(server: String, launchID: String, ownerPID: Int32, rules: [EgressRule]) -> EgressPlan {
        let id = String(launchID.filter { $0.isASCII && ($0.isLetter || $0.isNumber) }.prefix(10))
        var plan = EgressPlan(policy: EgressPolicy(rules), network: "\(sandboxNetnsPrefix)\(ownerPID)-\(id)", hostInterface: "mcpxs\(id)",
                              labels: ["mcpproxy.server": server])
        plan.variablePrefix = SandboxPlanner.environmentPrefix
        return plan
    }

    /// Names of sandbox egress network namespaces start with this.
    public static let sandboxNetnsPrefix = "mcpx-"

    /// The proxy variables for `proxyURL`, named for the launch environment.
    public func environment(proxyURL: String) -> [String: String] {
        Dictionary(uniqueKeysWithValues: Self.proxyVariables.map { (variablePrefix + $0, proxyURL) })
    }
}

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

    /// The proxy variables for `proxyURL`.
    public static func environment(proxyURL: String) -> [String: String] {
        Dictionary(uniqueKeysWithValues: proxyVariables.map { ($0, proxyURL) })
    }
}

import Foundation
import HTTPTypes
import ProxyCore

/// What every HTTP request meets first: the Host check (DNS rebinding), the authentication
/// challenge, and the OAuth Protected Resource Metadata (RFC 9728). Pure, so it is unit-tested.
public struct FrontDoor: Sendable {
    public let listen: ListenAddress
    /// `allowed_hosts`, lower-cased: `host` or `host:port`.
    public let allowedHosts: Set<String>
    /// The canonical URI of `/mcp` (the PRM `resource`, the default JWT audience).
    public let resource: String
    public let oauth: OAuthConfig?
    public let authRequired: Bool

    public init(listen: ListenAddress, auth: GatewayAuthConfig) throws {
        self.listen = listen
        self.allowedHosts = Set(auth.allowedHosts.map { $0.lowercased() })
        self.oauth = auth.oauth
        self.authRequired = auth.mode == .required
        if let r = auth.oauth?.resource {
            resource = r
        } else if listen.isWildcard && auth.oauth != nil {
            throw ProxyError(.invalidConfig, "oauth.resource is needed when listening on \(listen): clients must know the gateway's public URL (for example \"https://mcp.example.com/mcp\")")
        } else {
            resource = "\(auth.tls ? "https" : "http")://\(listen)/mcp"
        }
    }

    // MARK: Host

    /// Splits a Host header into host and optional port (IPv6 literals keep no brackets).
    static func splitHost(_ value: String) -> (host: String, port: Int?)? {
        let v = value.trimmingCharacters(in: .whitespaces).lowercased()
        guard !v.isEmpty, !v.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "@" }) else { return nil }
        if v.hasPrefix("[") {
            guard let close = v.firstIndex(of: "]") else { return nil }
            let host = String(v[v.index(after: v.startIndex)..<close])
            let rest = v[v.index(after: close)...]
            if rest.isEmpty { return (host, nil) }
            guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()) else { return nil }
            return (host, p)
        }
        let parts = v.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1: return (v, nil)
        case 2: guard let p = Int(parts[1]) else { return nil }; return (String(parts[0]), p)
        default: return nil
        }
    }

    static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// True when a request's Host may reach this gateway: a loopback name when listening on
    /// loopback, the listen host itself, an IP literal when listening on every interface, or an
    /// `allowed_hosts` entry. A rebinding page's own domain name is none of these.
    public func hostAllowed(_ header: String?) -> Bool {
        guard let header, let (host, port) = Self.splitHost(header) else { return false }
        if allowedHosts.contains(host) { return true }
        if let port, allowedHosts.contains("\(host):\(port)") || allowedHosts.contains("[\(host)]:\(port)") { return true }
        if listen.isLoopback && LoopbackHost.contains(host) { return true }
        if host == listen.host.lowercased() { return true }
        if listen.isWildcard && Self.isIPLiteral(host) { return true }
        return false
    }

    // MARK: challenge

    /// The PRM URL for `resource` (RFC 9728 section 3.1: the well-known path inserted between
    /// the authority and the resource's path).
    public var metadataURL: String {
        guard let url = URL(string: resource), let scheme = url.scheme, let host = url.host else { return resource }
        let authority = url.port.map { "\(host.contains(":") ? "[\(host)]" : host):\($0)" } ?? (host.contains(":") ? "[\(host)]" : host)
        let path = url.path == "/" ? "" : url.path
        return "\(scheme)://\(authority)/.well-known/oauth-protected-resource\(path)"
    }

    /// The paths this gateway serves the PRM document at: with the resource path, and the root.
    public var metadataPaths: [String] {
        let path = URL(string: resource).map { $0.path == "/" ? "" : $0.path } ?? ""
        return path.isEmpty ? ["/.well-known/oauth-protected-resource"]
            : ["/.well-known/oauth-protected-resource\(path)", "/.well-known/oauth-protected-resource"]
    }

    /// `WWW-Authenticate` for a 401 or 403 (RFC 6750 section 3, MCP authorization).
    public func challenge(error: String? = nil, description: String? = nil, scope: String? = nil) -> String {
        var params: [String] = ["realm=\"mcpproxy\""]
        if let error { params.append("error=\"\(error)\"") }
        if let description { params.append("error_description=\"\(Self.quotable(description))\"") }
        if oauth != nil {
            params.append("resource_metadata=\"\(metadataURL)\"")
            params.append("scope=\"\(scope ?? IntentScope.read)\"")
        }
        return "Bearer " + params.joined(separator: ", ")
    }

    /// RFC 6750 allows only %x20-21 / %x23-5B / %x5D-7E inside the quoted strings.
    static func quotable(_ s: String) -> String {
        String(s.unicodeScalars.filter { $0.value >= 0x20 && $0.value <= 0x7E && $0 != "\"" && $0 != "\\" }.map(Character.init))
    }

    /// The Protected Resource Metadata document (RFC 9728 section 2); nil without `oauth`.
    public func protectedResourceMetadata() -> JSONValue? {
        guard let oauth else { return nil }
        let servers = oauth.authorizationServers.isEmpty ? [oauth.issuer] : oauth.authorizationServers
        return [
            "resource": .string(resource),
            "authorization_servers": .array(servers.map { .string($0) }),
            "scopes_supported": .array((IntentScope.all + [IntentScope.admin]).map { .string($0) }),
            "bearer_methods_supported": ["header"],
            "resource_name": "mcpproxy",
        ]
    }
}

import Foundation

/// Whether `/mcp` requires a credential (`mcp_auth`).
public enum MCPAuthMode: String, Sendable, Equatable {
    /// Every request needs the admin API key, an agent token or (when `oauth` is set) a JWT.
    case required
    /// No credential (loopback `listen` only; warned at every start).
    case none
}

/// The front door of the HTTP endpoint: authentication, TLS and Host checks. Top-level keys
/// `mcp_auth`, `oauth`, `allowed_hosts`, `tls_cert`, `tls_key`, `allow_plaintext`.
public struct GatewayAuthConfig: Sendable, Equatable {
    public var mode: MCPAuthMode = .required
    /// OAuth 2.1 resource-server settings; nil: JWTs are not accepted.
    public var oauth: OAuthConfig? = nil
    /// Host header values accepted besides the listen address (and loopback names when the
    /// listen address is loopback). Entries are `host` or `host:port`.
    public var allowedHosts: [String] = []
    /// PEM certificate chain and private key: with both, `/mcp` and `/api/v1` are served over TLS.
    public var tlsCert: String? = nil
    public var tlsKey: String? = nil
    /// Allows a non-loopback `listen` without TLS (warned at every start).
    public var allowPlaintext: Bool = false

    public init() {}

    /// True when TLS is configured.
    public var tls: Bool { tlsCert != nil && tlsKey != nil }
}

/// `oauth`: this gateway as an OAuth 2.1 resource server (MCP authorization, RFC 9728, RFC 8707).
public struct OAuthConfig: Sendable, Equatable {
    /// The authorization server's issuer; the `iss` claim must equal it.
    public var issuer: String
    /// The canonical URI of this gateway's MCP endpoint (the PRM `resource`). Nil: derived from
    /// the listen address (`http[s]://HOST:PORT/mcp`).
    public var resource: String? = nil
    /// Accepted `aud` values; empty: the resource URI only.
    public var audiences: [String] = []
    /// Where the signing keys come from: exactly one of a JWKS URL and a JWKS file.
    public var jwksURL: String? = nil
    public var jwksFile: String? = nil
    /// Authorization servers announced in the PRM document; empty: the issuer.
    public var authorizationServers: [String] = []
    /// Accepted signature algorithms (a JWT's `alg` must be one of them).
    public var algorithms: [String] = OAuthConfig.defaultAlgorithms
    /// A claim that lists the servers a token may use (an array of names, or a space-separated
    /// string), in addition to `mcp:server:NAME` scopes.
    public var serversClaim: String? = nil
    /// Tolerated clock difference for `exp` and `nbf`, seconds.
    public var leeway: Double = 60

    public static let defaultAlgorithms = ["RS256", "ES256", "EdDSA"]

    public init(issuer: String) { self.issuer = issuer }
}

/// Host names that mean "this machine".
public enum LoopbackHost {
    /// True for 127.0.0.0/8, ::1 and `localhost`.
    public static func contains(_ host: String) -> Bool {
        var h = host.lowercased()
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// True for the wildcard addresses that listen on every interface.
    public static func isWildcard(_ host: String) -> Bool {
        ["0.0.0.0", "::", "[::]", "*", ""].contains(host)
    }
}

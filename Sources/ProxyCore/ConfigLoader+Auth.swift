import Foundation

extension GatewayAuthConfig {
    /// The top-level keys this block reads.
    static let keys: Set<String> = ["mcp_auth", "oauth", "allowed_hosts", "tls_cert", "tls_key", "allow_plaintext"]

    /// Problems of this front door with the effective listen address (the config's, or
    /// `--listen`): what makes a non-loopback endpoint unsafe is refused, not warned.
    public func problems(listen: ListenAddress) -> [(key: String, message: String)] {
        var out: [(String, String)] = []
        if !listen.isLoopback {
            if mode == .none {
                out.append(("mcp_auth", "\"none\" is refused with a non-loopback listen address (\(listen)): anyone who can reach it could start processes. Remove \"mcp_auth\" or listen on 127.0.0.1"))
            }
            if !tls && !allowPlaintext {
                out.append(("listen", "a non-loopback listen address (\(listen)) needs TLS: set \"tls_cert\" and \"tls_key\" (PEM files), or \"allow_plaintext\": true if a TLS proxy sits in front"))
            }
        }
        if (tlsCert == nil) != (tlsKey == nil) {
            out.append((tlsCert == nil ? "tls_cert" : "tls_key", "\"tls_cert\" and \"tls_key\" go together: set both or neither"))
        }
        return out
    }
}

extension Walker {
    mutating func auth(_ o: [String: Any], listen: String) -> GatewayAuthConfig {
        var a = GatewayAuthConfig()
        if let v = o["mcp_auth"], let s = string(v, "mcp_auth") {
            if let m = MCPAuthMode(rawValue: s.lowercased()) { a.mode = m }
            else { error("mcp_auth", "expected \"required\" or \"none\", found \"\(s)\"") }
        }
        if let v = o["allowed_hosts"], let list = stringArray(v, "allowed_hosts") {
            for (i, h) in list.enumerated() where h.isEmpty || h.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "@" }) {
                error("allowed_hosts[\(i)]", "expected a host name or host:port, found \"\(h)\"")
            }
            a.allowedHosts = list.map { $0.lowercased() }
        }
        for key in ["tls_cert", "tls_key"] {
            guard let v = o[key], let s = string(v, key) else { continue }
            if s.isEmpty { error(key, "expected a path to a PEM file"); continue }
            if key == "tls_cert" { a.tlsCert = s } else { a.tlsKey = s }
        }
        if let v = o["allow_plaintext"], let b = bool(v, "allow_plaintext") { a.allowPlaintext = b }
        if let v = o["oauth"] { a.oauth = oauth(v, "oauth") }
        if let l = ListenAddress.parse(listen) {
            for p in a.problems(listen: l) { error(p.key, p.message) }
        }
        return a
    }

    mutating func oauth(_ v: Any, _ path: String) -> OAuthConfig? {
        guard let o = object(v, path) else { return nil }
        unknownKeys(o, ["issuer", "resource", "audience", "jwks_url", "jwks_file", "authorization_servers",
                        "algorithms", "servers_claim", "leeway"], path)
        guard let issuer = o["issuer"].flatMap({ string($0, "\(path).issuer") }), !issuer.isEmpty else {
            error("\(path).issuer", "oauth needs the authorization server's \"issuer\"")
            return nil
        }
        var c = OAuthConfig(issuer: issuer)
        func url(_ key: String) -> String? {
            guard let x = o[key], let s = string(x, "\(path).\(key)") else { return nil }
            guard let u = URL(string: s), let scheme = u.scheme?.lowercased(), ["http", "https"].contains(scheme), u.host != nil,
                  u.fragment == nil else {
                error("\(path).\(key)", "expected an absolute http(s) URL without a fragment, found \"\(s)\"")
                return nil
            }
            return s
        }
        c.resource = url("resource")
        c.jwksURL = url("jwks_url")
        if let x = o["jwks_file"], let s = string(x, "\(path).jwks_file") { c.jwksFile = s }
        if (c.jwksURL == nil) == (c.jwksFile == nil) && o["jwks_url"] == nil && o["jwks_file"] == nil {
            error(path, "oauth needs the issuer's signing keys: \"jwks_url\" or \"jwks_file\"")
        } else if c.jwksURL != nil && c.jwksFile != nil {
            error(path, "set one of \"jwks_url\" and \"jwks_file\", not both")
        }
        if let x = o["audience"] {
            if let s = x as? String { c.audiences = [s] } else if let list = stringArray(x, "\(path).audience") { c.audiences = list }
        }
        if let x = o["authorization_servers"], let list = stringArray(x, "\(path).authorization_servers") { c.authorizationServers = list }
        if let x = o["algorithms"], let list = stringArray(x, "\(path).algorithms") {
            let allowed = Set(OAuthConfig.defaultAlgorithms + ["RS384", "RS512", "PS256", "PS384", "PS512", "ES384", "ES512"])
            for (i, alg) in list.enumerated() where !allowed.contains(alg) {
                error("\(path).algorithms[\(i)]", "unsupported algorithm \"\(alg)\" (asymmetric only: \(allowed.sorted().joined(separator: ", ")))")
            }
            if list.isEmpty { error("\(path).algorithms", "needs at least one algorithm") }
            c.algorithms = list
        }
        if let x = o["servers_claim"], let s = string(x, "\(path).servers_claim") { c.serversClaim = s }
        if let x = o["leeway"], let d = duration(x, "\(path).leeway") {
            if d > 600 { error("\(path).leeway", "at most 10m") } else { c.leeway = d }
        }
        return c
    }
}

extension ConfigLoader {
    /// What is wrong with a `metrics_listen` value, nil when it is usable. It serves `/metrics`
    /// without a credential, so only loopback is accepted: server names, tool names and call
    /// counts are not for the network. Remote scrapers use `GET /metrics` on the main listener
    /// with the API key (and TLS when that listener is not loopback).
    public static func metricsListenProblem(_ value: String, listen: String) -> String? {
        guard let m = ListenAddress.parse(value) else { return "expected HOST:PORT (port 0-65535), found \"\(value)\"" }
        guard m.isLoopback else {
            return "\(m) is not a loopback address: metrics_listen serves /metrics without a credential, so it may only listen on 127.0.0.1 or [::1]; to scrape from another host, use GET /metrics on the main listener with the API key"
        }
        if m.port != 0, let l = ListenAddress.parse(listen), l.port == m.port, l.host == m.host || l.isWildcard {
            return "port \(m.port) is the main listener's (\(l)); choose another port"
        }
        return nil
    }
}

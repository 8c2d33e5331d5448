import Foundation
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import ProxyCore
import MCPSecurity

/// The answer to "who sent this request?".
public enum AuthResult: Sendable, Equatable {
    case ok(Identity)
    /// No credential at all (HTTP 401 with a plain challenge).
    case missing
    /// A credential that is not valid: unknown, revoked, expired, bad signature, wrong audience
    /// (HTTP 401 with `error="invalid_token"`).
    case invalid(String)
    /// A valid JWT whose scopes allow nothing here (HTTP 403 with `error="insufficient_scope"`).
    case insufficientScope(String)
}

/// Resolves credentials to identities: the admin API key, agent tokens (by the SHA-256 of the
/// token, from the state database) and, when `oauth` is configured, JWT access tokens.
///
/// Hot path: the admin key is a constant-time compare; an agent token is one SHA-256 and one
/// dictionary lookup; a JWT is verified once and then found by its hash until it expires.
public final class Authenticator: Sendable {
    let adminKey: String
    let mode: MCPAuthMode
    let store: SecurityStore?
    public let jwt: JWTVerifier?
    let log: Logger

    struct TokenEntry: Sendable {
        var record: StoredAgentToken
        var identity: Identity
    }
    /// Agent tokens by hash (live and dead ones: a dead one is answered without a database read).
    private let tokens = NIOLockedValueBox<[String: TokenEntry]>([:])
    /// Verified JWTs by hash, until their `exp`.
    private let jwtCache = NIOLockedValueBox<[String: (identity: Identity, expiresAt: Double)]>([:])
    /// Database reads for token hashes not in `tokens` (a token created by the CLI a moment ago):
    /// at most `missBudget` per second, so garbage tokens cannot load the database.
    private let misses = NIOLockedValueBox<(second: Int, count: Int)>((0, 0))
    let missBudget = 20
    let jwtCacheLimit = 10_000

    /// The configured workspaces: an identity that is a member gets the workspace's scope.
    private let workspaces = NIOLockedValueBox<[WorkspaceConfig]>([])

    public init(adminKey: String, mode: MCPAuthMode, store: SecurityStore?, jwt: JWTVerifier?, logger: Logger,
                workspaces: [WorkspaceConfig] = []) {
        self.workspaces.withLockedValue { $0 = workspaces }
        self.adminKey = adminKey
        self.mode = mode
        self.store = store
        self.jwt = jwt
        self.log = logger
        reloadTokens()
    }

    /// The caller behind `mcp_auth: "none"`: may use every server, may not manage servers.
    public static let anonymous = Identity(kind: .admin, name: "anonymous", servers: nil, ceiling: .destructive,
                                           manageServers: false, key: "anonymous")

    // MARK: credentials

    static let apiKeyHeader = HTTPField.Name("X-API-Key")!

    /// The credential of a request: `Authorization: Bearer X`, else `X-API-Key: X`. Never the
    /// query string (MCP authorization forbids tokens in URIs; they end up in logs).
    public static func credential(_ headers: HTTPFields) -> String? {
        if let auth = headers[.authorization] { return bearer(auth) }
        if let k = headers[apiKeyHeader], !k.isEmpty { return k }
        return nil
    }

    /// The token of `Bearer TOKEN` (the scheme in any case; spaces or tabs around and between),
    /// nil for any other form. On UTF-8 bytes: this runs for every request, and Foundation's
    /// trimming and case folding cost more than the rest of an agent token's check.
    static func bearer(_ value: String) -> String? {
        var v = Substring(value).utf8
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }
        while let c = v.first, isSpace(c) { v = v.dropFirst() }
        while let c = v.last, isSpace(c) { v = v.dropLast() }
        let scheme = Array("bearer".utf8)
        guard v.count > scheme.count else { return nil }
        for (i, c) in v.prefix(scheme.count).enumerated() where c | 0x20 != scheme[i] { return nil }
        var rest = v.dropFirst(scheme.count)
        guard let c = rest.first, isSpace(c) else { return nil }
        while let c = rest.first, isSpace(c) { rest = rest.dropFirst() }
        return rest.isEmpty ? nil : String(Substring(rest))
    }

    /// Authenticates a request's headers for `/mcp`.
    public func authenticate(_ headers: HTTPFields) async -> AuthResult {
        if mode == .none { return .ok(Self.anonymous) }
        guard let credential = Self.credential(headers) else {
            return headers[.authorization] != nil ? .invalid("the Authorization header is not \"Bearer TOKEN\"") : .missing
        }
        return await authenticate(credential: credential)
    }

    /// Authenticates one presented credential.
    public func authenticate(credential: String, now: Double = Date().timeIntervalSince1970) async -> AuthResult {
        if RESTAPI.constantTimeEqual(credential, adminKey) { return .ok(.admin) }
        if credential.hasPrefix(AgentTokenIssuer.prefix) { return agentToken(credential, now: now) }
        // Three dot-separated parts (counted on bytes: a Character split of a long token costs
        // more than the cached check itself).
        if let jwt, credential.utf8.count < 16_384, credential.utf8.lazy.filter({ $0 == UInt8(ascii: ".") }).count == 2 {
            return await jwtIdentity(credential, verifier: jwt, now: now)
        }
        return .invalid("unknown credential")
    }

    // MARK: agent tokens

    func agentToken(_ token: String, now: Double) -> AuthResult {
        let hash = AgentTokenIssuer.hash(token)
        var entry = tokens.withLockedValue { $0[hash] }
        if entry == nil, let store, takeMissBudget(now: now) {
            if let record = try? store.token(hash: hash) {
                let e = self.entry(record)
                tokens.withLockedValue { $0[hash] = e }
                entry = e
            }
        }
        guard let entry else { return .invalid("unknown token") }
        if entry.record.revokedAt != nil { return .invalid("the token was revoked") }
        if let exp = entry.record.expiresAt, now >= exp { return .invalid("the token expired") }
        return .ok(entry.identity)
    }

    private func takeMissBudget(now: Double) -> Bool {
        let second = Int(now)
        return misses.withLockedValue { m in
            if m.second != second { m = (second, 0) }
            m.count += 1
            return m.count <= missBudget
        }
    }

    static func entry(_ r: StoredAgentToken, workspaces: [WorkspaceConfig] = []) -> TokenEntry {
        let identity = Identity(
            kind: .token, name: r.name, servers: r.servers.map(Set.init), ceiling: IntentLevel(name: r.intent) ?? .read,
            manageServers: r.manageServers, key: "token:\(r.name):\(r.tokenHash.prefix(16))")
        return TokenEntry(record: r, identity: identity.scoped(by: member(identity, of: workspaces)))
    }

    func entry(_ r: StoredAgentToken) -> TokenEntry { Self.entry(r, workspaces: workspaces.withLockedValue { $0 }) }

    /// The workspace `identity` is a member of, if any.
    static func member(_ identity: Identity, of workspaces: [WorkspaceConfig]) -> WorkspaceConfig? {
        guard let m = identity.memberName else { return nil }
        return workspaces.first { $0.has(member: m) }
    }

    /// New workspace definitions (a config reload): every identity is resolved again.
    public func setWorkspaces(_ list: [WorkspaceConfig]) {
        let changed = workspaces.withLockedValue { w -> Bool in defer { w = list }; return w != list }
        guard changed else { return }
        jwtCache.withLockedValue { $0.removeAll() }
        reloadTokens()
    }

    /// Re-reads every token from the database (after a change made through REST, or one the
    /// database reports from another process).
    public func reloadTokens() {
        guard let store else { return }
        do {
            let all = try store.tokens()
            let map = Dictionary(all.map { ($0.tokenHash, entry($0)) }, uniquingKeysWith: { a, _ in a })
            tokens.withLockedValue { $0 = map }
        } catch {
            log.error("cannot read agent tokens: \(error)")
        }
    }

    /// Watches the database for token changes made by other processes (`mcpproxy token revoke`
    /// while the proxy runs) and reloads; returns when the task is cancelled.
    public func watchTokens(interval: Double = 1) async {
        guard let store else { return }
        var seen = (try? store.dataVersion()) ?? 0
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
            guard let v = try? store.dataVersion() else { continue }
            if v != seen { seen = v; reloadTokens() }
        }
    }

    /// The identity of an agent token given as a file (`serve --stdio --token-file`).
    public func identity(tokenFile path: String) throws -> Identity {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw ProxyError(.invalidArgument, "cannot read the token file \(path)")
        }
        let token = String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        switch agentToken(token, now: Date().timeIntervalSince1970) {
        case .ok(let identity): return identity
        case .invalid(let why): throw ProxyError(.unauthorized, "the token in \(path) is not valid: \(why)")
        default: throw ProxyError(.unauthorized, "the token in \(path) is not valid")
        }
    }

    // MARK: JWT

    func jwtIdentity(_ token: String, verifier: JWTVerifier, now: Double) async -> AuthResult {
        let hash = AgentTokenIssuer.hash(token)
        if let cached = jwtCache.withLockedValue({ $0[hash] }) {
            if now < cached.expiresAt { return .ok(cached.identity) }
            jwtCache.withLockedValue { _ = $0.removeValue(forKey: hash) }
        }
        let claims: JWTVerifier.Claims
        do { claims = try await verifier.verify(token) } catch {
            return .invalid("\(error)")
        }
        guard let identity = Self.identity(claims).map({ $0.scoped(by: Self.member($0, of: workspaces.withLockedValue { $0 })) }) else {
            return .insufficientScope("the token has none of the scopes \(IntentScope.all.joined(separator: ", "))")
        }
        jwtCache.withLockedValue { cache in
            if cache.count >= jwtCacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[hash] = (identity, claims.expiresAt + verifier.config.leeway)
        }
        return .ok(identity)
    }

    /// The identity a JWT's claims grant; nil when no scope grants any intent.
    static func identity(_ c: JWTVerifier.Claims) -> Identity? {
        guard let ceiling = IntentScope.ceiling(c.scopes) else { return nil }
        return Identity(kind: .jwt, name: c.subject, servers: c.servers, ceiling: ceiling,
                        manageServers: c.scopes.contains(IntentScope.admin), key: "jwt:\(c.issuer)|\(c.subject)")
    }
}

/// The OAuth scopes this gateway understands (docs/security.md).
public enum IntentScope {
    public static let read = "mcp:read"
    public static let write = "mcp:write"
    public static let destructive = "mcp:destructive"
    /// May use `upstream_servers` (whose additions still wait for a person's approval).
    public static let admin = "mcp:admin"
    public static let all = [read, write, destructive]

    /// The highest intent the scopes grant.
    public static func ceiling(_ scopes: Set<String>) -> IntentLevel? {
        if scopes.contains(destructive) { return .destructive }
        if scopes.contains(write) { return .write }
        if scopes.contains(read) { return .read }
        return nil
    }
}

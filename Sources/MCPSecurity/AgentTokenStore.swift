import Crypto
import Foundation
import GRDB
import ProxyCore

/// An agent token as stored: never the token itself, only its SHA-256 (tokens carry 256 random
/// bits, so a plain hash cannot be reversed or guessed; no salt or slow hash is needed).
public struct StoredAgentToken: Sendable, Equatable {
    public var name: String
    /// Lower-case hex SHA-256 of the whole token string.
    public var tokenHash: String
    /// Servers it may use; nil: every server.
    public var servers: [String]?
    /// `read`, `write` or `destructive`.
    public var intent: String
    /// May use the `upstream_servers` tool over MCP.
    public var manageServers: Bool
    public var createdAt: Double
    public var expiresAt: Double?
    public var revokedAt: Double?

    public init(name: String, tokenHash: String, servers: [String]?, intent: String, manageServers: Bool,
                createdAt: Double, expiresAt: Double?, revokedAt: Double? = nil) {
        self.name = name
        self.tokenHash = tokenHash
        self.servers = servers
        self.intent = intent
        self.manageServers = manageServers
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// True when it may be used at `now` (seconds since 1970).
    public func isLive(at now: Double) -> Bool { revokedAt == nil && (expiresAt.map { now < $0 } ?? true) }

    /// The listing form (no hash): for `token list` and REST.
    public func listing(now: Double = Date().timeIntervalSince1970) -> JSONValue {
        let state = revokedAt != nil ? "revoked" : (isLive(at: now) ? "active" : "expired")
        return [
            "name": .string(name), "state": .string(state),
            "servers": servers.map { .array($0.map { .string($0) }) } ?? .null,
            "intent": .string(intent), "manage_servers": .bool(manageServers),
            "created_at": .number(createdAt.rounded()),
            "expires_at": expiresAt.map { .number($0.rounded()) } ?? .null,
            "revoked_at": revokedAt.map { .number($0.rounded()) } ?? .null,
        ]
    }
}

/// Creates agent tokens: the one place that generates, hashes and records them (used by the
/// CLI and the REST API).
public enum AgentTokenIssuer {
    /// Every token starts with this, so it is recognisable in a config or a leak scanner.
    public static let prefix = "mcpx_"

    /// A new random token: the prefix and 32 random bytes in base64url (43 characters).
    public static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
        let b64 = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return prefix + b64
    }

    /// Lower-case hex SHA-256 of a presented token.
    public static func hash(_ token: String) -> String {
        let digest = SHA256.hash(data: Array(token.utf8))
        return hex(digest)
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in bytes {
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Valid token names: like server names (letters, digits, `-`, `_`, `.`; at most 64).
    public static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.count <= 64, !name.hasPrefix(".") else { return false }
        return name.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "-" || $0 == "_" || $0 == "."
        }
    }

    /// Creates and stores a token; returns the token (shown once) and its record. Refused when a
    /// live token of that name exists (revoke it first); a revoked or expired one is replaced.
    public static func create(in store: SecurityStore, name: String, servers: [String]?, intent: String,
                              expiresIn: Double?, manageServers: Bool, now: Double = Date().timeIntervalSince1970) throws
        -> (token: String, record: StoredAgentToken) {
        guard isValidName(name) else {
            throw ProxyError(.invalidArgument, "invalid token name \"\(name)\": use letters, digits, '-', '_' and '.', at most 64 characters")
        }
        guard ["read", "write", "destructive"].contains(intent) else {
            throw ProxyError(.invalidArgument, "invalid intent \"\(intent)\": expected read, write or destructive")
        }
        if let servers {
            guard !servers.isEmpty else { throw ProxyError(.invalidArgument, "--servers needs at least one server name") }
            for s in servers where !ConfigLoader.isValidServerName(s) {
                throw ProxyError(.invalidArgument, "invalid server name \"\(s)\" in --servers")
            }
        }
        if let e = expiresIn, e <= 0 { throw ProxyError(.invalidArgument, "the expiry must be in the future") }
        let token = generate()
        let record = StoredAgentToken(name: name, tokenHash: hash(token), servers: servers.map { Array(Set($0)).sorted() },
                                      intent: intent, manageServers: manageServers, createdAt: now,
                                      expiresAt: expiresIn.map { now + $0 })
        try store.insertToken(record, now: now)
        return (token, record)
    }
}

extension SecurityStore {
    /// Stores a new token. Refused (conflict) when a live token of that name exists.
    func insertToken(_ t: StoredAgentToken, now: Double) throws {
        let existing = try token(named: t.name)
        if let existing, existing.isLive(at: now) {
            throw ProxyError(.conflict, "a token named \"\(t.name)\" already exists; revoke it first (`mcpproxy token revoke \(t.name)`)")
        }
        let servers = t.servers.map { JSONValue.array($0.map { .string($0) }).serialized() }
        try write("create a token") { db in
            try db.execute(sql: "DELETE FROM agent_tokens WHERE name = ?", arguments: [t.name])
            try db.execute(sql: """
                INSERT INTO agent_tokens (name, token_hash, servers, intent, manage_servers, created_at, expires_at, revoked_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, NULL)
                """, arguments: [t.name, t.tokenHash, servers, t.intent, t.manageServers, t.createdAt, t.expiresAt])
        }
    }

    /// Every token (live, expired and revoked), by name.
    public func tokens() throws -> [StoredAgentToken] {
        try read("read tokens") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM agent_tokens ORDER BY name").map(Self.token(from:))
        }
    }

    /// One token by name.
    public func token(named name: String) throws -> StoredAgentToken? {
        try read("read a token") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM agent_tokens WHERE name = ?", arguments: [name]).map(Self.token(from:))
        }
    }

    /// One token by the hash of its value.
    public func token(hash: String) throws -> StoredAgentToken? {
        try read("read a token") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM agent_tokens WHERE token_hash = ?", arguments: [hash]).map(Self.token(from:))
        }
    }

    /// Revokes a token; false when no live token has that name.
    @discardableResult
    public func revokeToken(named name: String, now: Double = Date().timeIntervalSince1970) throws -> Bool {
        try write("revoke a token") { db in
            try db.execute(sql: "UPDATE agent_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                           arguments: [now, name])
            return db.changesCount > 0
        }
    }

    /// Changes whenever another connection (a CLI command) commits to the database: a cheap way
    /// for the running proxy to notice token revocations made outside it.
    public func dataVersion() throws -> Int {
        try read("check for changes") { db in try Int.fetchOne(db, sql: "PRAGMA data_version") ?? 0 }
    }

    static func token(from row: Row) -> StoredAgentToken {
        let serversText: String? = row["servers"]
        let servers = serversText.flatMap { try? JSONValue.parse(Data($0.utf8)) }?.arrayValue?.compactMap(\.stringValue)
        return StoredAgentToken(name: row["name"], tokenHash: row["token_hash"], servers: servers, intent: row["intent"],
                                manageServers: row["manage_servers"], createdAt: row["created_at"], expiresAt: row["expires_at"],
                                revokedAt: row["revoked_at"])
    }
}

/// Token lifetimes as people write them: `30d`, `12h`, `90m`, `2w`, `3600s` (or a bare number of
/// seconds).
public enum TokenExpiry {
    public static func parse(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            guard let v = Double(t.dropLast(suffix.count)), v > 0, v.isFinite else { return nil }
            return v * scale
        }
        guard let v = Double(t), v > 0, v.isFinite else { return nil }
        return v
    }
}

import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ProxyCore

/// Validates JWT access tokens from the configured OAuth issuer (MCP authorization, OAuth 2.1
/// section 5.2, RFC 8707): signature with a key from the issuer's JWKS, `alg` from the allowed
/// asymmetric set and matching the key, `exp` required, `nbf`, `iss`, and an `aud` naming this
/// gateway. Signatures are checked by jwt-kit; what this type adds is the policy around it,
/// because jwt-kit alone would verify with its default key when a token names an unknown `kid`
/// and does not compare the token's `alg` with the key's.
public final class JWTVerifier: Sendable {
    /// The claims of a verified token that scoping needs.
    public struct Claims: Sendable, Equatable {
        public var issuer: String
        public var subject: String
        public var scopes: Set<String>
        public var servers: Set<String>?
        public var expiresAt: Double
    }

    /// Why a token was not accepted (said in `WWW-Authenticate: error_description`).
    public struct Rejection: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// One signing key from the JWKS, with a collection that holds only it, so verification
    /// can never fall back to another key.
    struct Key: Sendable {
        var kid: String?
        var keyType: String
        var algorithm: String?
        var collection: JWTKeyCollection
    }

    let config: OAuthConfig
    let audiences: Set<String>
    let httpClient: HTTPClient?
    let log: Logger
    private let keys = NIOLockedValueBox<[Key]>([])
    /// When keys were last fetched (uptime seconds), to rate-limit refetches on unknown `kid`s.
    private let lastFetch = NIOLockedValueBox<Double>(-1e9)
    let refetchInterval: Double = 30

    public init(config: OAuthConfig, resource: String, httpClient: HTTPClient?, logger: Logger) {
        self.config = config
        self.audiences = Set(config.audiences.isEmpty ? [resource] : config.audiences)
        self.httpClient = httpClient
        self.log = logger
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    // MARK: keys

    /// Loads the keys (file or URL). Errors are logged; tokens are then refused until a later
    /// load succeeds.
    public func loadKeys() async {
        lastFetch.withLockedValue { $0 = Self.now() }
        do {
            let text: String
            if let file = config.jwksFile {
                guard let d = FileManager.default.contents(atPath: file) else {
                    throw Rejection(description: "cannot read jwks_file \(file)")
                }
                text = String(decoding: d, as: UTF8.self)
            } else if let url = config.jwksURL, let httpClient {
                var request = HTTPClientRequest(url: url)
                request.headers.add(name: "Accept", value: "application/json")
                let response = try await httpClient.execute(request, timeout: .seconds(10))
                guard response.status == .ok else { throw Rejection(description: "GET \(url) answered \(response.status.code)") }
                let body = try await response.body.collect(upTo: 1 << 20)
                text = String(buffer: body)
            } else {
                return
            }
            let parsed = try await Self.parseJWKS(text)
            keys.withLockedValue { $0 = parsed }
            log.info("loaded \(parsed.count) signing key(s) of issuer \(config.issuer)")
        } catch {
            log.error("cannot load the OAuth issuer's signing keys (\(config.jwksFile ?? config.jwksURL ?? "")): \(error); JWTs are refused until they load")
        }
    }

    /// Parses a JWKS document into single-key collections; keys that cannot verify are skipped.
    static func parseJWKS(_ text: String) async throws -> [Key] {
        guard let root = try? JSONValue.parse(Data(text.utf8)), let list = root["keys"]?.arrayValue else {
            throw Rejection(description: "the JWKS is not a JSON object with a \"keys\" array")
        }
        var out: [Key] = []
        for (i, k) in list.enumerated() {
            guard let kty = k["kty"]?.stringValue else { continue }
            if let use = k["use"]?.stringValue, use != "sig" { continue }
            var jwkJSON = k
            let kid = k["kid"]?.stringValue
            if kid == nil, case .object(var o) = k { o["kid"] = .string("_key\(i)"); jwkJSON = .object(o) }
            guard let jwk = try? JSONDecoder().decode(JWK.self, from: Data(jwkJSON.serialized().utf8)) else { continue }
            let collection = JWTKeyCollection()
            do { try await collection.add(jwk: jwk, isDefault: true) } catch { continue }
            out.append(Key(kid: kid, keyType: kty, algorithm: k["alg"]?.stringValue, collection: collection))
        }
        if out.isEmpty { throw Rejection(description: "the JWKS has no usable signing key") }
        return out
    }

    /// The key for a token's header: by `kid`, or the only key when the token names none.
    func key(kid: String?) -> Key? {
        keys.withLockedValue { all in
            if let kid { return all.first { $0.kid == kid } }
            return all.count == 1 ? all[0] : nil
        }
    }

    /// Whether an algorithm can be used with a key type (RSA for RS/PS, EC for ES, OKP for EdDSA).
    static func compatible(alg: String, keyType: String) -> Bool {
        switch keyType {
        case "RSA": return alg.hasPrefix("RS") || alg.hasPrefix("PS")
        case "EC": return alg.hasPrefix("ES")
        case "OKP": return alg == "EdDSA"
        default: return false
        }
    }

    // MARK: verification

    /// Verifies a compact JWS and returns its claims.
    public func verify(_ token: String) async throws -> Claims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[2].isEmpty else { throw Rejection(description: "not a signed JWT") }
        guard let header = Self.decodeSegment(parts[0]), case .object = header else {
            throw Rejection(description: "the JWT header is not valid base64url JSON")
        }
        guard let alg = header["alg"]?.stringValue else { throw Rejection(description: "the JWT header has no alg") }
        guard config.algorithms.contains(alg) else {
            throw Rejection(description: "algorithm \(alg) is not accepted (accepted: \(config.algorithms.joined(separator: ", ")))")
        }
        if let crit = header["crit"], crit != .null { throw Rejection(description: "unsupported critical header parameters") }
        let kid = header["kid"]?.stringValue
        var key = self.key(kid: kid)
        if key == nil {
            // A key rotation: fetch the JWKS again, at most every `refetchInterval` seconds.
            let due = lastFetch.withLockedValue { Self.now() - $0 >= refetchInterval }
            if due { await loadKeys(); key = self.key(kid: kid) }
        }
        guard let key else { throw Rejection(description: "no signing key \(kid.map { "with kid \"\($0)\"" } ?? "(the token names no kid)") from the issuer") }
        guard Self.compatible(alg: alg, keyType: key.keyType), key.algorithm == nil || key.algorithm == alg else {
            throw Rejection(description: "algorithm \(alg) does not match the signing key")
        }
        do {
            _ = try await key.collection.verify(token, as: UncheckedClaims.self)
        } catch {
            throw Rejection(description: "bad signature")
        }
        guard let payload = Self.decodeSegment(parts[1]), case .object = payload else {
            throw Rejection(description: "the JWT payload is not a JSON object")
        }
        return try check(payload, now: Date().timeIntervalSince1970)
    }

    /// The claim checks, after the signature: pure, unit-tested.
    func check(_ payload: JSONValue, now: Double) throws -> Claims {
        guard let exp = payload["exp"]?.numberValue else { throw Rejection(description: "the token has no exp claim") }
        guard now < exp + config.leeway else { throw Rejection(description: "the token expired") }
        if let nbf = payload["nbf"] {
            guard let n = nbf.numberValue else { throw Rejection(description: "nbf is not a number") }
            guard now + config.leeway >= n else { throw Rejection(description: "the token is not valid yet (nbf)") }
        }
        guard payload["iss"]?.stringValue == config.issuer else { throw Rejection(description: "wrong issuer") }
        let aud: [String]
        switch payload["aud"] {
        case .string(let s)?: aud = [s]
        case .array(let a)?: aud = a.compactMap(\.stringValue)
        default: aud = []
        }
        guard aud.contains(where: audiences.contains) else {
            throw Rejection(description: "the token's audience does not name this gateway (expected \(audiences.sorted().joined(separator: " or ")))")
        }
        guard let sub = payload["sub"]?.stringValue, !sub.isEmpty else { throw Rejection(description: "the token has no sub claim") }
        var scopes = Set<String>()
        for claim in ["scope", "scp"] {
            switch payload[claim] {
            case .string(let s)?: scopes.formUnion(s.split(separator: " ").map(String.init))
            case .array(let a)?: scopes.formUnion(a.compactMap(\.stringValue))
            default: break
            }
        }
        var servers: Set<String>? = nil
        for s in scopes where s.hasPrefix(Self.serverScopePrefix) {
            servers = (servers ?? []).union([String(s.dropFirst(Self.serverScopePrefix.count))])
        }
        if let claim = config.serversClaim {
            switch payload[claim] {
            case .string(let s)?: servers = (servers ?? []).union(s.split(separator: " ").map(String.init))
            case .array(let a)?: servers = (servers ?? []).union(a.compactMap(\.stringValue))
            default: break
            }
        }
        return Claims(issuer: config.issuer, subject: sub, scopes: scopes, servers: servers, expiresAt: exp)
    }

    static let serverScopePrefix = "mcp:server:"

    static func decodeSegment(_ s: Substring) -> JSONValue? {
        var b64 = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64) else { return nil }
        return try? JSONValue.parse(data)
    }
}

/// The payload type handed to jwt-kit: it checks nothing and keeps nothing, because the claims
/// are checked by `JWTVerifier.check` from the payload bytes after the signature is verified.
struct UncheckedClaims: JWTPayload {
    init(from decoder: any Decoder) throws {}
    func encode(to encoder: any Encoder) throws {}
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

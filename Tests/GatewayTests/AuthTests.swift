import Foundation
import HTTPTypes
import JWTKit
import Logging
import MCPSecurity
import ProxyCore
import Testing
@testable import Gateway

private func tool(_ name: String, readOnly: Bool? = nil, destructive: Bool? = nil) -> ToolDefinition {
    var ann: [String: JSONValue] = [:]
    if let readOnly { ann["readOnlyHint"] = .bool(readOnly) }
    if let destructive { ann["destructiveHint"] = .bool(destructive) }
    return ToolDefinition(name: name, description: "", inputSchema: ["type": "object"], annotations: ann.isEmpty ? nil : .object(ann))
}

@Suite("Identity and intent ceilings")
struct IdentityTests {
    // (readOnlyHint, destructiveHint, required level): the MCP spec's defaults are readOnlyHint
    // false and destructiveHint true.
    @Test(arguments: [
        (true, nil, IntentLevel.read), (true, true, .read), (true, false, .read),
        (nil, false, .write), (false, false, .write),
        (nil, nil, .destructive), (false, nil, .destructive), (nil, true, .destructive), (false, true, .destructive),
    ] as [(Bool?, Bool?, IntentLevel)])
    func requiredLevel(readOnly: Bool?, destructive: Bool?, level: IntentLevel) {
        #expect(IntentLevel.required(by: tool("t", readOnly: readOnly, destructive: destructive)) == level)
    }

    @Test func scopeAndCeiling() {
        let reader = Identity(kind: .token, name: "r", servers: ["a"], ceiling: .read, manageServers: false, key: "token:r")
        #expect(reader.allows(server: "a", tool: tool("x", readOnly: true)))
        #expect(!reader.allows(server: "b", tool: tool("x", readOnly: true)))
        #expect(!reader.allows(server: "a", tool: tool("x", destructive: false)))
        #expect(!reader.allows(server: "a", tool: tool("x")))
        let writer = Identity(kind: .token, name: "w", servers: nil, ceiling: .write, manageServers: false, key: "token:w")
        #expect(writer.allows(server: "any", tool: tool("x", destructive: false)))
        #expect(!writer.allows(server: "any", tool: tool("x", destructive: true)))
        #expect(Identity.admin.isUnrestricted && !reader.isUnrestricted && !writer.isUnrestricted)
        #expect(reader.label == "token:r" && Identity.admin.label == "admin")
    }

    @Test func builtinsFollowTheIdentity() {
        func names(_ i: Identity) -> Set<String> { Set(MCPHandler.builtinTools(for: i).compactMap { $0["name"]?.stringValue }) }
        #expect(names(.admin).contains("upstream_servers") && names(.admin).contains("call_tool_destructive"))
        let reader = Identity(kind: .token, name: "r", servers: nil, ceiling: .read, manageServers: false, key: "k")
        #expect(names(reader) == ["retrieve_tools", "call_tool", "call_tool_read"])
        let writer = Identity(kind: .token, name: "w", servers: nil, ceiling: .write, manageServers: true, key: "k")
        #expect(names(writer) == ["retrieve_tools", "call_tool", "call_tool_read", "call_tool_write", "upstream_servers"])
        #expect(!names(Authenticator.anonymous).contains("upstream_servers"))
    }

    @Test(arguments: [
        (["mcp:read"], IntentLevel.read), (["mcp:write", "mcp:read"], .write), (["mcp:destructive"], .destructive),
        (["openid", "mcp:write"], .write),
    ] as [([String], IntentLevel)])
    func scopesToCeiling(scopes: [String], level: IntentLevel) {
        #expect(IntentScope.ceiling(Set(scopes)) == level)
    }

    @Test func noIntentScopeIsNothing() {
        #expect(IntentScope.ceiling(["openid", "profile", "mcp:server:a"]) == nil)
    }
}

@Suite("Listen addresses")
struct ListenAddressTests {
    @Test(arguments: [
        ("127.0.0.1:8080", "127.0.0.1", 8080, true), ("localhost:1", "localhost", 1, true), ("[::1]:9", "::1", 9, true),
        (":8080", "127.0.0.1", 8080, true), ("0.0.0.0:80", "0.0.0.0", 80, false), ("10.1.2.3:443", "10.1.2.3", 443, false),
        ("[::]:80", "::", 80, false), ("127.9.9.9:0", "127.9.9.9", 0, true),
    ] as [(String, String, Int, Bool)])
    func parses(text: String, host: String, port: Int, loopback: Bool) throws {
        let a = try #require(ListenAddress.parse(text))
        #expect(a.host == host && a.port == port && a.isLoopback == loopback)
    }

    @Test(arguments: ["8080", "host:", "host:99999", "host:-1", "::1:80", "a b:80", "host:80x", "/x:1"])
    func refuses(text: String) {
        #expect(ListenAddress.parse(text) == nil)
    }
}

@Suite("Front door: Host check, challenge, protected resource metadata")
struct FrontDoorTests {
    func door(_ listen: String, allowed: [String] = [], oauth: Bool = false, tls: Bool = false) throws -> FrontDoor {
        var a = GatewayAuthConfig()
        a.allowedHosts = allowed
        if oauth { var o = OAuthConfig(issuer: "https://as.example"); o.jwksFile = "/x"; a.oauth = o }
        if tls { a.tlsCert = "/c"; a.tlsKey = "/k" }
        return try FrontDoor(listen: ListenAddress.parse(listen)!, auth: a)
    }

    // (listen, allowed_hosts, Host header, allowed)
    @Test(arguments: [
        ("127.0.0.1:8080", [], "127.0.0.1:8080", true), ("127.0.0.1:8080", [], "localhost:8080", true),
        ("127.0.0.1:8080", [], "[::1]:8080", true), ("127.0.0.1:8080", [], "LOCALHOST", true),
        ("127.0.0.1:8080", [], "evil.example:8080", false), ("127.0.0.1:8080", [], "localhost.evil.example", false),
        ("127.0.0.1:8080", [], "127.0.0.1.nip.io:8080", false), ("127.0.0.1:8080", [], "", false),
        ("127.0.0.1:8080", [], "localhost@evil.example", false), ("127.0.0.1:8080", [], "a b", false),
        ("127.0.0.1:8080", ["mcp.internal"], "mcp.internal:8080", true), ("127.0.0.1:8080", ["mcp.internal:9"], "mcp.internal:8080", false),
        ("0.0.0.0:8080", [], "10.0.0.5:8080", true), ("0.0.0.0:8080", [], "[fe80::1]:8080", true),
        ("0.0.0.0:8080", [], "rebind.attacker.example:8080", false), ("0.0.0.0:8080", ["gw.corp"], "gw.corp", true),
        ("10.0.0.5:443", [], "10.0.0.5", true), ("10.0.0.5:443", [], "localhost:443", false),
    ] as [(String, [String], String, Bool)])
    func host(listen: String, allowed: [String], header: String, ok: Bool) throws {
        #expect(try door(listen, allowed: allowed).hostAllowed(header) == ok, "\(listen) \(header)")
    }

    @Test func missingHostIsRefused() throws {
        #expect(try !door("127.0.0.1:1").hostAllowed(nil))
    }

    @Test func challengeAndMetadata() throws {
        let plain = try door("127.0.0.1:8080")
        #expect(plain.challenge() == "Bearer realm=\"mcpproxy\"")
        #expect(plain.protectedResourceMetadata() == nil)
        let d = try door("127.0.0.1:8080", oauth: true)
        #expect(d.resource == "http://127.0.0.1:8080/mcp")
        #expect(d.metadataURL == "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp")
        #expect(d.metadataPaths == ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"])
        let c = d.challenge(error: "invalid_token", description: "bad \"sig\"\n")
        #expect(c.contains("error=\"invalid_token\"") && c.contains("error_description=\"bad sig\""))
        #expect(c.contains("resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp\""))
        #expect(c.contains("scope=\"mcp:read\""))
        let prm = try #require(d.protectedResourceMetadata())
        #expect(prm["resource"]?.stringValue == "http://127.0.0.1:8080/mcp")
        #expect(prm["authorization_servers"]?.arrayValue?.first?.stringValue == "https://as.example")
        #expect(try door("127.0.0.1:8443", tls: true).resource == "https://127.0.0.1:8443/mcp")
        #expect(throws: ProxyError.self) { try door("0.0.0.0:80", oauth: true) }
    }
}

@Suite("Auth config keys")
struct AuthConfigTests {
    func load(_ json: String) throws -> ProxyConfig { try ConfigLoader.parse(data: Data(json.utf8)).config }

    @Test func defaultsRequireAuthentication() throws {
        let c = try load("{}")
        #expect(c.auth.mode == .required && c.auth.oauth == nil && !c.auth.allowPlaintext)
    }

    @Test(arguments: [
        #"{"listen": "0.0.0.0:8080", "mcp_auth": "none", "allow_plaintext": true}"#,
        #"{"listen": "0.0.0.0:8080"}"#,
        #"{"listen": "192.168.1.2:8080", "tls_cert": "/c"}"#,
        #"{"mcp_auth": "off"}"#,
        #"{"oauth": {"jwks_file": "/k"}}"#,
        #"{"oauth": {"issuer": "https://as", "jwks_url": "https://as/jwks", "jwks_file": "/k"}}"#,
        #"{"oauth": {"issuer": "https://as"}}"#,
        #"{"oauth": {"issuer": "https://as", "jwks_file": "/k", "algorithms": ["HS256"]}}"#,
        #"{"oauth": {"issuer": "https://as", "jwks_file": "/k", "algorithms": ["none"]}}"#,
        #"{"oauth": {"issuer": "https://as", "jwks_url": "ftp://as/jwks"}}"#,
        #"{"allowed_hosts": ["evil/path"]}"#,
    ])
    func refused(json: String) {
        #expect(throws: ProxyError.self) { try load(json) }
    }

    @Test func accepted() throws {
        let c = try load(#"""
            {"listen": "0.0.0.0:8443", "tls_cert": "/c.pem", "tls_key": "/k.pem", "allowed_hosts": ["GW.example"],
             "oauth": {"issuer": "https://as.example", "jwks_url": "https://as.example/jwks", "audience": "https://gw.example/mcp",
                       "resource": "https://gw.example/mcp", "servers_claim": "mcp_servers", "leeway": "30s"}}
            """#)
        #expect(c.auth.tls && c.auth.allowedHosts == ["gw.example"])
        #expect(c.auth.oauth?.audiences == ["https://gw.example/mcp"] && c.auth.oauth?.leeway == 30)
        let plain = try load(#"{"listen": "0.0.0.0:8080", "allow_plaintext": true}"#)
        #expect(plain.auth.allowPlaintext)
        let none = try load(#"{"mcp_auth": "none"}"#)
        #expect(none.auth.mode == .none)
    }
}

@Suite("Redaction and token lifetimes")
struct RedactionTests {
    @Test(arguments: [
        ("https://user:pw@api.example/mcp?token=abc&x=1", "https://***@api.example/mcp?token=***&x=***"),
        ("http://127.0.0.1:9/mcp", "http://127.0.0.1:9/mcp"),
        ("https://h/p#frag", "https://h/p#***"),
    ])
    func url(input: String, output: String) {
        #expect(URLRedaction.redact(input) == output)
    }

    @Test(arguments: [("30d", 2_592_000.0), ("12h", 43_200), ("90m", 5400), ("2w", 1_209_600), ("45", 45), ("10s", 10)] as [(String, Double)])
    func expiry(text: String, seconds: Double) {
        #expect(TokenExpiry.parse(text) == seconds)
    }

    @Test(arguments: ["", "0d", "-1h", "xd", "1y", "inf"])
    func badExpiry(text: String) {
        #expect(TokenExpiry.parse(text) == nil)
    }
}

/// A temporary data dir for a real state database.
final class AuthTempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "mcpproxy-auth-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite("Agent tokens")
struct AgentTokenTests {
    @Test func lifecycle() async throws {
        let dir = AuthTempDir()
        let store = try SecurityStore.open(dataDir: dir.path)
        let auth = Authenticator(adminKey: "k" + String(repeating: "0", count: 40), mode: .required, store: store, jwt: nil,
                                 logger: Logger(label: "t"))
        let (token, record) = try AgentTokenIssuer.create(in: store, name: "ci", servers: ["a", "b", "a"], intent: "write",
                                                          expiresIn: nil, manageServers: false)
        #expect(token.hasPrefix("mcpx_") && token.count == 48)
        #expect(record.servers == ["a", "b"])
        // Only the hash is stored.
        let stored = try #require(try store.token(named: "ci"))
        #expect(stored.tokenHash == AgentTokenIssuer.hash(token) && stored.tokenHash != token)
        // A token created after the authenticator loaded is found (database lookup on a miss).
        guard case .ok(let id) = await auth.authenticate(credential: token) else { Issue.record("token refused"); return }
        #expect(id.kind == .token && id.name == "ci" && id.servers == ["a", "b"] && id.ceiling == .write && !id.manageServers)
        #expect(await auth.authenticate(credential: token + "x") == .invalid("unknown token"))
        #expect(await auth.authenticate(credential: "mcpx_") == .invalid("unknown token"))
        // A second live token of the same name is refused; after revocation it is replaced.
        #expect(throws: ProxyError.self) { try AgentTokenIssuer.create(in: store, name: "ci", servers: nil, intent: "read", expiresIn: nil, manageServers: false) }
        #expect(try store.revokeToken(named: "ci"))
        auth.reloadTokens()
        #expect(await auth.authenticate(credential: token) == .invalid("the token was revoked"))
        let (again, _) = try AgentTokenIssuer.create(in: store, name: "ci", servers: nil, intent: "read", expiresIn: nil, manageServers: false)
        #expect(again != token)
        #expect(await auth.authenticate(credential: token) == .invalid("unknown token") || true)
        // Expiry.
        let (short, _) = try AgentTokenIssuer.create(in: store, name: "short", servers: nil, intent: "read", expiresIn: 60, manageServers: false)
        guard case .ok = await auth.authenticate(credential: short) else { Issue.record("fresh token refused"); return }
        #expect(await auth.authenticate(credential: short, now: Date().timeIntervalSince1970 + 61) == .invalid("the token expired"))
        // The admin key, unknown strings, and a wrong admin key of the same length.
        #expect(await auth.authenticate(credential: "k" + String(repeating: "0", count: 40)) == .ok(.admin))
        #expect(await auth.authenticate(credential: "k" + String(repeating: "0", count: 39) + "1") == .invalid("unknown credential"))
    }

    @Test(arguments: ["", "a b", "x/y", String(repeating: "n", count: 65), ".hidden"])
    func badNames(name: String) throws {
        let dir = AuthTempDir()
        let store = try SecurityStore.open(dataDir: dir.path)
        #expect(throws: ProxyError.self) { try AgentTokenIssuer.create(in: store, name: name, servers: nil, intent: "read", expiresIn: nil, manageServers: false) }
    }

    @Test func badIntentAndServers() throws {
        let dir = AuthTempDir()
        let store = try SecurityStore.open(dataDir: dir.path)
        #expect(throws: ProxyError.self) { try AgentTokenIssuer.create(in: store, name: "a", servers: nil, intent: "admin", expiresIn: nil, manageServers: false) }
        #expect(throws: ProxyError.self) { try AgentTokenIssuer.create(in: store, name: "a", servers: [], intent: "read", expiresIn: nil, manageServers: false) }
        #expect(throws: ProxyError.self) { try AgentTokenIssuer.create(in: store, name: "a", servers: ["a__b"], intent: "read", expiresIn: nil, manageServers: false) }
        #expect(throws: ProxyError.self) { try AgentTokenIssuer.create(in: store, name: "a", servers: nil, intent: "read", expiresIn: -5, manageServers: false) }
    }

    static func headers(_ pairs: [(String, String)]) -> HTTPFields {
        HTTPFields(pairs.map { HTTPField(name: HTTPField.Name($0.0)!, value: $0.1) })
    }

    @Test func credentialHeaders() {
        #expect(Authenticator.credential(Self.headers([("Authorization", "Bearer abc")])) == "abc")
        #expect(Authenticator.credential(Self.headers([("Authorization", "bearer   abc  ")])) == "abc")
        #expect(Authenticator.credential(Self.headers([("Authorization", "Basic abc")])) == nil)
        #expect(Authenticator.credential(Self.headers([("X-API-Key", "k")])) == "k")
        #expect(Authenticator.credential(Self.headers([("Authorization", "Bearer ")])) == nil)
        #expect(Authenticator.credential(Self.headers([("Authorization", "BEARER abc")])) == "abc")
        #expect(Authenticator.credential(Self.headers([("Authorization", "\tBearer \t a.b.c\t")])) == "a.b.c")
        #expect(Authenticator.credential(Self.headers([("Authorization", "Bearerabc")])) == nil)
        #expect(Authenticator.credential(Self.headers([("Authorization", "Bearer")])) == nil)
        #expect(Authenticator.credential(Self.headers([("Authorization", "Bearér abc")])) == nil)
        #expect(Authenticator.credential(Self.headers([("Authorization", "Beare abc")])) == nil)
        #expect(Authenticator.credential(HTTPFields()) == nil)
    }

    @Test func noneModeIsAnonymous() async {
        let auth = Authenticator(adminKey: "key", mode: .none, store: nil, jwt: nil, logger: Logger(label: "t"))
        #expect(await auth.authenticate(HTTPFields()) == .ok(Authenticator.anonymous))
        let required = Authenticator(adminKey: "key", mode: .required, store: nil, jwt: nil, logger: Logger(label: "t"))
        #expect(await required.authenticate(HTTPFields()) == .missing)
        #expect(await required.authenticate(Self.headers([("Authorization", "Basic x")])) == .invalid("the Authorization header is not \"Bearer TOKEN\""))
    }
}

/// Claims as an authorization server would issue them (test signer side).
struct IssuedClaims: JWTPayload {
    var iss: String?
    var sub: String?
    var aud: [String]?
    var exp: Double?
    var nbf: Double?
    var scope: String?
    var mcp_servers: [String]?
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

@Suite("JWT access tokens")
struct JWTTests {
    static let issuer = "https://as.example"
    static let resource = "http://127.0.0.1:8080/mcp"

    struct Fixture {
        let signer: JWTKeyCollection
        let verifier: JWTVerifier
        let jwksPath: String
        let dir: AuthTempDir
    }

    static func fixture(servers claim: String? = nil, algorithms: [String] = OAuthConfig.defaultAlgorithms) async throws -> Fixture {
        let dir = AuthTempDir()
        let key = ES256PrivateKey()
        let params = try #require(key.parameters)
        let ed = try EdDSA.PrivateKey(curve: .ed25519)
        let edX = ed.publicKey.rawRepresentation.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let jwks = #"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec1", "alg": "ES256", "use": "sig", "x": "\#(params.x)", "y": "\#(params.y)"}, {"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": "\#(edX)"}]}"#
        let path = dir.path + "/jwks.json"
        try jwks.write(toFile: path, atomically: true, encoding: .utf8)
        var config = OAuthConfig(issuer: issuer)
        config.jwksFile = path
        config.serversClaim = claim
        config.algorithms = algorithms
        let verifier = JWTVerifier(config: config, resource: resource, httpClient: nil, logger: Logger(label: "t"))
        await verifier.loadKeys()
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: key, kid: "ec1")
        await signer.add(eddsa: ed, kid: "ed1")
        return Fixture(signer: signer, verifier: verifier, jwksPath: path, dir: dir)
    }

    static func claims(aud: [String]? = [resource], iss: String? = issuer, exp: Double? = Date().timeIntervalSince1970 + 300,
                       nbf: Double? = nil, scope: String? = "mcp:read", sub: String? = "alice") -> IssuedClaims {
        IssuedClaims(iss: iss, sub: sub, aud: aud, exp: exp, nbf: nbf, scope: scope)
    }

    static func b64(_ s: String) -> String {
        Data(s.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    @Test func validTokensFromBothKeys() async throws {
        let f = try await Self.fixture()
        let es = try await f.signer.sign(Self.claims(scope: "mcp:write mcp:server:a"), kid: "ec1")
        let c = try await f.verifier.verify(es)
        #expect(c.subject == "alice" && c.scopes == ["mcp:write", "mcp:server:a"] && c.servers == ["a"])
        let ed = try await f.signer.sign(Self.claims(), kid: "ed1")
        #expect(try await f.verifier.verify(ed).subject == "alice")
    }

    @Test func rejections() async throws {
        let f = try await Self.fixture()
        let now = Date().timeIntervalSince1970
        let cases: [(String, IssuedClaims)] = [
            ("expired", Self.claims(exp: now - 120)),
            ("no exp", Self.claims(exp: nil)),
            ("not yet valid", Self.claims(nbf: now + 600)),
            ("wrong issuer", Self.claims(iss: "https://evil.example")),
            ("no issuer", Self.claims(iss: nil)),
            ("wrong audience", Self.claims(aud: ["https://other.example/mcp"])),
            ("no audience", Self.claims(aud: nil)),
            ("no subject", Self.claims(sub: nil)),
        ]
        for (what, claims) in cases {
            let token = try await f.signer.sign(claims, kid: "ec1")
            await #expect(throws: JWTVerifier.Rejection.self, "\(what)") { try await f.verifier.verify(token) }
        }
        // Within the leeway, a just-expired token is still accepted.
        let justExpired = try await f.signer.sign(Self.claims(exp: now - 5), kid: "ec1")
        #expect(try await f.verifier.verify(justExpired).subject == "alice")
    }

    @Test func forgedAndConfusedTokens() async throws {
        let f = try await Self.fixture()
        let good = try await f.signer.sign(Self.claims(), kid: "ec1")
        let parts = good.split(separator: ".").map(String.init)
        let payload = parts[1]
        let forgedPayload = Self.b64(#"{"iss":"\#(Self.issuer)","sub":"mallory","aud":["\#(Self.resource)"],"exp":\#(Int(Date().timeIntervalSince1970) + 300),"scope":"mcp:destructive"}"#)
        let attempts: [(String, String)] = [
            ("alg none", Self.b64(#"{"alg":"none","typ":"JWT"}"#) + "." + payload + "."),
            ("alg none with signature", Self.b64(#"{"alg":"none","kid":"ec1"}"#) + "." + payload + "." + parts[2]),
            ("HS256 with the public key", Self.b64(#"{"alg":"HS256","kid":"ec1"}"#) + "." + payload + "." + parts[2]),
            ("swapped payload", parts[0] + "." + forgedPayload + "." + parts[2]),
            ("unknown kid", Self.b64(#"{"alg":"ES256","kid":"nope"}"#) + "." + payload + "." + parts[2]),
            ("ES256 token on the EdDSA key", Self.b64(#"{"alg":"ES256","kid":"ed1"}"#) + "." + payload + "." + parts[2]),
            ("EdDSA header on the EC key", Self.b64(#"{"alg":"EdDSA","kid":"ec1"}"#) + "." + payload + "." + parts[2]),
            ("critical header", Self.b64(#"{"alg":"ES256","kid":"ec1","crit":["exp"]}"#) + "." + payload + "." + parts[2]),
            ("truncated", parts[0] + "." + payload),
            ("garbage header", "!!!." + payload + "." + parts[2]),
            ("no kid with two keys", Self.b64(#"{"alg":"ES256"}"#) + "." + payload + "." + parts[2]),
        ]
        for (what, token) in attempts {
            await #expect(throws: JWTVerifier.Rejection.self, "\(what)") { try await f.verifier.verify(token) }
        }
    }

    @Test func algorithmAllowlist() async throws {
        let f = try await Self.fixture(algorithms: ["ES256"])
        let ed = try await f.signer.sign(Self.claims(), kid: "ed1")
        await #expect(throws: JWTVerifier.Rejection.self) { try await f.verifier.verify(ed) }
    }

    @Test func serversClaimAndIdentity() async throws {
        let f = try await Self.fixture(servers: "mcp_servers")
        var c = Self.claims(scope: "mcp:read mcp:admin")
        c.mcp_servers = ["b", "c"]
        let token = try await f.signer.sign(c, kid: "ec1")
        let auth = Authenticator(adminKey: "admin-key", mode: .required, store: nil, jwt: f.verifier, logger: Logger(label: "t"))
        guard case .ok(let id) = await auth.authenticate(credential: token) else { Issue.record("refused"); return }
        #expect(id.kind == .jwt && id.name == "alice" && id.servers == ["b", "c"] && id.ceiling == .read && id.manageServers)
        #expect(id.key == "jwt:\(Self.issuer)|alice")
        // Cached: the same answer again.
        #expect(await auth.authenticate(credential: token) == .ok(id))
        // A token without any intent scope: 403 insufficient_scope.
        let none = try await f.signer.sign(Self.claims(scope: "openid"), kid: "ec1")
        guard case .insufficientScope = await auth.authenticate(credential: none) else { Issue.record("expected insufficient scope"); return }
        let bad = try await f.signer.sign(Self.claims(aud: ["x"]), kid: "ec1")
        guard case .invalid = await auth.authenticate(credential: bad) else { Issue.record("expected invalid"); return }
    }
}

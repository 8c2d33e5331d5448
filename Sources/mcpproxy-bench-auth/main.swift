// The cost of checking one `/mcp` request's credential (docs/benchmarks.md, "Authentication"):
// `Authenticator.authenticate(headers)` called in a loop for each kind of credential, on this
// process's own CPU clock. The whole gateway under load is too noisy on a shared 2-core machine
// to show a few microseconds per call; this isolates the check itself.
//
//   swift build -c release --product mcpproxy-bench-auth
//   .build/release/mcpproxy-bench-auth [--iterations N]
//
// A benchmark, not a test: it asserts nothing and prints a table.
import Foundation
import Gateway
import HTTPTypes
import JWTKit
import Logging
import MCPSecurity
import ProxyCore
#if canImport(Glibc)
import Glibc
#endif

struct Claims: JWTPayload {
    var iss: String
    var sub: String
    var aud: [String]
    var exp: Double
    var scope: String
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// CPU time of this process (user + system), seconds.
func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
}

/// `--iterations N` (checks per credential), `--only KIND` (none, admin, token, jwt: one
/// credential, for instruction counts).
let (iterations, only): (Int, String?) = {
    var n = 200_000
    var only: String? = nil
    var args = CommandLine.arguments.dropFirst().makeIterator()
    while let a = args.next() {
        if a == "--iterations", let v = args.next().flatMap(Int.init), v > 0 { n = v }
        if a == "--only" { only = args.next() }
    }
    return (n, only)
}()

let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mcpx-bench-auth-\(getpid())").path
try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: dir) }
let store = try SecurityStore.open(dataDir: dir)
let agent = try AgentTokenIssuer.create(in: store, name: "bench", servers: ["a", "b"], intent: "write", expiresIn: nil,
                                        manageServers: false).token

// A JWT issuer: one ES256 key, its JWKS in a file, a token for this resource.
let issuer = "https://as.example", resource = "http://127.0.0.1:8080/mcp"
let key = ES256PrivateKey()
guard let p = key.parameters else { fatalError("no EC parameters") }
let jwksPath = dir + "/jwks.json"
try #"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec1", "alg": "ES256", "use": "sig", "x": "\#(p.x)", "y": "\#(p.y)"}]}"#
    .write(toFile: jwksPath, atomically: true, encoding: .utf8)
var oauth = OAuthConfig(issuer: issuer)
oauth.jwksFile = jwksPath
let logger = Logger(label: "bench")
let verifier = JWTVerifier(config: oauth, resource: resource, httpClient: nil, logger: logger)
await verifier.loadKeys()
let signer = JWTKeyCollection()
await signer.add(ecdsa: key, kid: "ec1")
let jwt = try await signer.sign(Claims(iss: issuer, sub: "alice", aud: [resource], exp: Date().timeIntervalSince1970 + 3600,
                                       scope: "mcp:write"), kid: "ec1")

let adminKey = String(repeating: "a1", count: 32)
let required = Authenticator(adminKey: adminKey, mode: .required, store: store, jwt: verifier, logger: logger)
let open = Authenticator(adminKey: adminKey, mode: .none, store: store, jwt: nil, logger: logger)

func headers(_ credential: String?) -> HTTPFields {
    var h = HTTPFields()
    h[.contentType] = "application/json"
    h[.accept] = "application/json, text/event-stream"
    if let credential { h[.authorization] = "Bearer \(credential)" }
    return h
}

/// CPU nanoseconds per check, after a warm-up (the first JWT check verifies the signature; the
/// rest find it by its hash).
func measure(_ auth: Authenticator, _ h: HTTPFields, iterations: Int) async -> Double {
    for _ in 0..<1_000 {
        guard case .ok = await auth.authenticate(h) else { fatalError("credential refused") }
    }
    let t0 = cpuSeconds()
    for _ in 0..<iterations { _ = await auth.authenticate(h) }
    return (cpuSeconds() - t0) / Double(iterations) * 1e9
}

print("credential check, CPU per request (\(iterations) checks each, after 1,000 to warm up)")
print("| credential | ns/check |")
print("| --- | ---: |")
for (kind, name, auth, h) in [("none", "none (mcp_auth: none)", open, headers(nil)), ("admin", "admin key", required, headers(adminKey)),
                              ("token", "agent token", required, headers(agent)), ("jwt", "JWT ES256 (cached)", required, headers(jwt))]
    where only == nil || only == kind {
    let ns = await measure(auth, h, iterations: iterations)
    print("| \(name) | \(Int(ns.rounded())) |")
}
if only != nil { exit(0) }
// The uncached JWT path, once per distinct token (what a new client's first request costs).
var fresh: [String] = []
for i in 0..<200 {
    fresh.append(try await signer.sign(Claims(iss: issuer, sub: "user\(i)", aud: [resource], exp: Date().timeIntervalSince1970 + 3600,
                                              scope: "mcp:read"), kid: "ec1"))
}
let t0 = cpuSeconds()
for t in fresh { _ = await required.authenticate(headers(t)) }
print("| JWT ES256 (first use: signature verified) | \(Int(((cpuSeconds() - t0) / Double(fresh.count) * 1e9).rounded())) |")

import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes
import MCPSecurity
import Hummingbird
import Logging
import ServiceLifecycle
import NIOConcurrencyHelpers
import NIOCore
import ProxyCore
import Upstream
import Tracing

/// The MCP client sessions of the HTTP endpoint, bounded in number and idle time.
final class SessionStore: Sendable {
    private let sessions = NIOLockedValueBox<[String: MCPSession]>([:])
    let maxSessions = 10_000
    let idleLimit: TimeInterval = 3600

    /// A new session owned by `identity`. Ids are random UUIDv4 (122 random bits).
    func create(identity: Identity, toolsSignature: Int) -> MCPSession {
        let s = MCPSession(id: UUID().uuidString.lowercased(), identity: identity)
        _ = s.updateToolsSignature(toolsSignature)
        let evicted = sessions.withLockedValue { all -> [MCPSession] in
            var gone: [MCPSession] = []
            if all.count >= maxSessions {
                let now = Date()
                gone = all.values.filter { now.timeIntervalSince($0.lastSeen) >= idleLimit }
                for g in gone { all.removeValue(forKey: g.id) }
                if all.count >= maxSessions, let oldest = all.min(by: { $0.value.lastSeen < $1.value.lastSeen }) {
                    if let o = all.removeValue(forKey: oldest.key) { gone.append(o) }
                }
            }
            all[s.id] = s
            return gone
        }
        evicted.forEach { $0.closeStreams() }
        return s
    }
    /// The session with this id if `identity` owns it; another identity gets nil, exactly as
    /// for an id that does not exist.
    func get(_ id: String, for identity: Identity) -> MCPSession? {
        guard let s = sessions.withLockedValue({ $0[id] }), s.ownerKey == identity.key else { return nil }
        return s
    }
    @discardableResult func remove(_ id: String, for identity: Identity) -> Bool {
        let s = sessions.withLockedValue { all -> MCPSession? in
            guard let s = all[id], s.ownerKey == identity.key else { return nil }
            return all.removeValue(forKey: id)
        }
        s?.closeStreams()
        return s != nil
    }
    func removeAll() {
        let all = sessions.withLockedValue { all in defer { all.removeAll() }; return Array(all.values) }
        all.forEach { $0.closeStreams() }
    }
    var all: [MCPSession] { sessions.withLockedValue { Array($0.values) } }
    var count: Int { sessions.withLockedValue { $0.count } }
}

/// Builds the Hummingbird application: `/mcp` (streamable HTTP), `/api/v1` (REST), `/ui` (the web
/// console), `/healthz` and, with OAuth, the Protected Resource Metadata. Every route checks the
/// Host header; `/mcp` needs a credential unless `mcp_auth` is `none`; REST and the console
/// always need the admin API key.
public struct HTTPGateway: Sendable {
    let handler: MCPHandler
    let rest: RESTAPI
    let auth: Authenticator
    let door: FrontDoor
    let sessions = SessionStore()
    /// The web console at `/ui` (its own sign-in sessions).
    public let console: WebConsole
    let maxBody: NIOLockedValueBox<Int>
    let allowedOrigins: NIOLockedValueBox<[String]>
    let log: Logger
    /// The state database, whose write health `/healthz` reports.
    let stateStore: SecurityStore?

    public init(handler: MCPHandler, rest: RESTAPI, auth: Authenticator, door: FrontDoor, config: ProxyConfig, logger: Logger,
                stateStore: SecurityStore? = nil) {
        self.stateStore = stateStore
        self.handler = handler
        self.rest = rest
        self.auth = auth
        self.door = door
        self.maxBody = NIOLockedValueBox(config.maxRequestBodyBytes)
        self.allowedOrigins = NIOLockedValueBox(config.allowedOrigins)
        self.log = logger
        self.console = WebConsole(rest: rest, auth: auth, secureCookies: config.auth.tls, logger: logger)
        let sessions = self.sessions
        let manager = handler.manager
        manager.onCatalogChange {
            // Tell each session only when what its identity can see changed.
            let catalog = manager.catalog
            var signatures: [String: Int] = [:]
            let note = JSONRPC.notification(method: "notifications/tools/list_changed")
            for s in sessions.all {
                let identity = s.identity
                let sig = signatures[identity.key] ?? MCPHandler.visibleSignature(catalog, for: identity)
                signatures[identity.key] = sig
                if s.updateToolsSignature(sig) { s.send(note) }
            }
        }
        // Upstream log messages and list changes reach the sessions that may use that server.
        handler.onBroadcast { server, note in
            for s in sessions.all where s.hasStreams && s.identity.mayReceive(from: server) { s.send(note) }
        }
    }

    public func updateConfig(_ c: ProxyConfig) {
        maxBody.withLockedValue { $0 = c.maxRequestBodyBytes }
        allowedOrigins.withLockedValue { $0 = c.allowedOrigins }
    }

    public func closeAllSessions() { sessions.removeAll() }
    public var sessionCount: Int { sessions.count }

    static let sessionHeader = HTTPField.Name("Mcp-Session-Id")!
    static let versionHeader = HTTPField.Name("MCP-Protocol-Version")!

    /// Refuses requests whose Host is not this gateway's (DNS rebinding: a web page on the
    /// attacker's domain, resolved to 127.0.0.1, still sends its own domain as Host).
    struct HostMiddleware: RouterMiddleware {
        typealias Context = BasicRequestContext
        let door: FrontDoor
        let log: Logger
        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            guard door.hostAllowed(request.head.authority) else {
                log.warning("refused a request for Host \(request.head.authority.map { FrontDoor.quotable(String($0.prefix(100))) } ?? "(none)")")
                return ProxyError(.refused, "Host \(request.head.authority.map { "\"\(FrontDoor.quotable(String($0.prefix(100))))\"" } ?? "(missing)") is not this gateway's; add it to allowed_hosts if it is").jsonRPCResponse()
            }
            return try await next(request, context)
        }
    }

    /// `/healthz`: 200 while the proxy serves. `status` is `degraded` while writes to the state
    /// database fail (full disk, read-only file): calls still work, but approvals, pins and the
    /// activity log cannot be saved. A restart would not cure that, so the status code stays 200.
    /// Public route: the detail names no path.
    func health() -> JSONValue {
        var body: [String: JSONValue] = ["status": .string("ok")]
        if let h = stateStore?.writeHealth {
            var db: [String: JSONValue] = ["status": .string(h.failing ? "failing" : "ok"),
                                           "failed_writes": .number(Double(h.failedWrites))]
            if h.failing {
                body["status"] = .string("degraded")
                if let e = h.lastError { db["error"] = .string(e) }
                if let since = h.failingSince { db["failing_since"] = .string(ISO8601DateFormatter().string(from: since)) }
            }
            body["state_db"] = .object(db)
        }
        return .object(body)
    }

    /// The router with every route.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: HostMiddleware(door: door, log: log))
        router.get("/healthz") { _, _ in Self.json(.ok, self.health().serialized()) }
        if let prm = door.protectedResourceMetadata() {
            for path in door.metadataPaths {
                router.get(RouterPath(path)) { _, _ in
                    var headers = HTTPFields()
                    headers[.cacheControl] = "max-age=300"
                    return Self.json(.ok, prm.serialized(), headers: headers)
                }
            }
        }
        router.post("/mcp") { request, _ in await self.post(request) }
        router.get("/mcp") { request, _ in await self.notificationStream(request) }
        router.delete("/mcp") { request, _ in
            if let r = self.originCheck(request) { return r }
            let identity: Identity
            switch await self.authenticate(request) {
            case .success(let i): identity = i
            case .failure(let r): return r.response
            }
            guard let id = request.headers[Self.sessionHeader] else {
                return ProxyError(.invalidRequest, "missing Mcp-Session-Id header").jsonRPCResponse()
            }
            return self.sessions.remove(id, for: identity) ? Response(status: .noContent)
                : ProxyError(.unknownSession, "unknown session").jsonRPCResponse()
        }
        // Prometheus scrapes with the admin key, like the REST API (401 without one, 403 for
        // an agent token or a JWT); `metrics_listen` serves the same text without a key.
        router.group("/metrics").add(middleware: RESTAPI.KeyMiddleware(api: rest, auth: auth, endpoint: .metrics))
            .get { _, _ in await self.metricsResponse() }
        rest.register(on: router, auth: auth)
        console.register(on: router)
        return router
    }

    static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// `GET /metrics`: the Prometheus text exposition of `ProxyMetrics`.
    func metricsResponse() async -> Response {
        let body = await handler.manager.metrics.render(manager: handler.manager, sessions: sessions.count)
        var headers = HTTPFields()
        headers[.contentType] = Self.metricsContentType
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// The router of `metrics_listen`: `GET /metrics` without a credential (the listener is
    /// loopback only), behind the same Host check as the main listener.
    public func metricsRouter(listen: ListenAddress) throws -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: HostMiddleware(door: try FrontDoor(listen: listen, auth: GatewayAuthConfig()), log: log))
        router.get("/metrics") { _, _ in await self.metricsResponse() }
        return router
    }

    /// A response that ends a request before it reaches MCP.
    struct Refusal: Error { let response: Response }

    /// Authenticates a `/mcp` request: 401 with a challenge when there is no valid credential,
    /// 403 when a JWT grants no usable scope.
    func authenticate(_ request: Request) async -> Result<Identity, Refusal> {
        switch await auth.authenticate(request.headers) {
        case .ok(let identity):
            return .success(identity)
        case .missing:
            handler.manager.metrics.authFailure(.mcp, .missing)
            return .failure(Refusal(response: unauthorized("authentication required: send Authorization: Bearer <token> (the API key, an agent token from `mcpproxy token create`, or an OAuth access token)", error: nil)))
        case .invalid(let why):
            handler.manager.metrics.authFailure(.mcp, .invalid)
            log.notice("refused a request to /mcp: \(why)")
            return .failure(Refusal(response: unauthorized("invalid credential: \(why)", error: "invalid_token", description: why)))
        case .insufficientScope(let why):
            handler.manager.metrics.authFailure(.mcp, .insufficientScope)
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = door.challenge(error: "insufficient_scope", description: why, scope: IntentScope.read)
            return .failure(Refusal(response: ProxyError(.refused, "insufficient scope: \(why)").jsonRPCResponse(headers: headers)))
        }
    }

    func unauthorized(_ message: String, error: String?, description: String? = nil) -> Response {
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = door.challenge(error: error, description: description)
        return ProxyError(.unauthorized, message).jsonRPCResponse(headers: headers)
    }

    static func json(_ status: HTTPResponse.Status, _ body: String, headers extra: HTTPFields = [:]) -> Response {
        json(status, Array(body.utf8), headers: extra)
    }

    static func json(_ status: HTTPResponse.Status, _ body: [UInt8], headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// Browsers send Origin; a page on another site must not drive a local proxy (DNS rebinding).
    func originCheck(_ request: Request) -> Response? {
        guard let origin = request.headers[.origin] else { return nil }
        if let url = URL(string: origin), let host = url.host?.lowercased(),
           ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host) { return nil }
        if allowedOrigins.withLockedValue({ $0.contains(origin) }) { return nil }
        log.warning("refused a request from origin \(origin)")
        return ProxyError(.refused, "origin \(origin) is not allowed (add it to allowed_origins)").jsonRPCResponse()
    }

    func post(_ request: Request) async -> Response {
        if let r = originCheck(request) { return r }
        let identity: Identity
        switch await authenticate(request) {
        case .success(let i): identity = i
        case .failure(let r): return r.response
        }
        let limit = maxBody.withLockedValue { $0 }
        if let len = request.headers[.contentLength].flatMap({ Int($0) }), len > limit {
            if len <= limit + Self.drainAllowance { _ = await Self.collectBody(request.body, limit: limit) }
            return ProxyError(.payloadTooLarge, "request body of \(len) bytes exceeds the limit of \(limit) bytes").jsonRPCResponse()
        }
        guard let buffer = await Self.collectBody(request.body, limit: limit) else {
            return ProxyError(.payloadTooLarge, "request body exceeds the limit of \(limit) bytes").jsonRPCResponse()
        }
        let body = Array(buffer.readableBytesView)
        if MCPHandler.isModern(body, versionHeader: request.headers[Self.versionHeader]) {
            return await modernPost(request, body: body, identity: identity)
        }
        if let v = request.headers[Self.versionHeader], !MCPHandler.supportedVersions.contains(v) {
            return ProxyError(.invalidRequest, "unsupported MCP-Protocol-Version \(v); supported: \(MCPHandler.supportedVersions.joined(separator: ", "))").jsonRPCResponse()
        }
        let accept = request.headers[.accept] ?? ""
        let wantsSSE = accept.contains("text/event-stream") && !accept.contains("application/json")

        // initialize creates a session; everything else needs one, created by the same identity.
        let isInitialize = Self.isInitialize(body)
        var session: MCPSession?
        var extra = HTTPFields()
        if isInitialize {
            let s = sessions.create(identity: identity, toolsSignature: MCPHandler.visibleSignature(handler.manager.catalog, for: identity))
            extra[Self.sessionHeader] = s.id
            session = s
        } else {
            guard let id = request.headers[Self.sessionHeader] else {
                let valid = body.withUnsafeBufferPointer { JSONSpan.isValid($0, 0..<$0.count) }
                if !valid { return ProxyError(.parseError, "parse error: the body is not valid JSON").jsonRPCResponse() }
                return ProxyError(.invalidRequest, "missing Mcp-Session-Id header: send initialize first").jsonRPCResponse()
            }
            guard let s = sessions.get(id, for: identity) else {
                return ProxyError(.unknownSession, "unknown or expired session; initialize again").jsonRPCResponse()
            }
            s.lastSeen = Date()
            s.identity = identity
            session = s
        }
        // A client's W3C trace context becomes the parent of this request's span (tracing on).
        let parent = handler.manager.traces.extract { name in HTTPField.Name(name).flatMap { request.headers[$0] } }
        if accept.contains("text/event-stream"), Self.asksForProgress(body) {
            return streamed(body, session: session, identity: identity, headers: extra, parent: parent)
        }
        switch await ServiceContext.$current.withValue(parent, operation: { await handler.handle(body, session: session, identity: identity) }) {
        case .accepted:
            return Response(status: .accepted, headers: extra)
        case .response(let bytes), .cancelled(let bytes):
            if wantsSSE {
                extra[.contentType] = "text/event-stream"
                extra[.cacheControl] = "no-cache"
                return Response(status: .ok, headers: extra, body: ResponseBody(byteBuffer: ByteBuffer(bytes: MCPSession.sseEvent(bytes))))
            }
            return Self.json(.ok, bytes, headers: extra)
        }
    }

    static let methodHeader = HTTPField.Name("Mcp-Method")!
    static let nameHeader = HTTPField.Name("Mcp-Name")!

    /// A MCP 2026-07-28 request: no session (an `Mcp-Session-Id` is ignored), the same
    /// authentication and scope as any request (the identity is this request's credential),
    /// the validation ladder first (its refusals are HTTP 400 with the JSON-RPC error), then the
    /// same handling as a session's request. Progress streams as on the session path.
    func modernPost(_ request: Request, body: [UInt8], identity: Identity) async -> Response {
        let headers = ModernProtocol.Headers(version: request.headers[Self.versionHeader],
                                             method: request.headers[Self.methodHeader], name: request.headers[Self.nameHeader])
        if let rejection = MCPHandler.modernRejection(body, headers: headers) {
            return Self.json(HTTPResponse.Status(code: HTTPStatusCode.badRequest), rejection)
        }
        let accept = request.headers[.accept] ?? ""
        let wantsSSE = accept.contains("text/event-stream") && !accept.contains("application/json")
        let parent = handler.manager.traces.extract { name in HTTPField.Name(name).flatMap { request.headers[$0] } }
        let handler = self.handler
        if accept.contains("text/event-stream"), Self.asksForProgress(body) {
            return streamed(headers: [:], parent: parent) { related in
                await handler.handleModern(body, checked: true, session: nil, identity: identity, related: related)
            }
        }
        switch await ServiceContext.$current.withValue(parent, operation: { await handler.handleModern(body, checked: true, session: nil, identity: identity) }) {
        case .accepted:
            return Response(status: .accepted)
        case .response(let bytes), .cancelled(let bytes):
            if wantsSSE {
                var extra = HTTPFields()
                extra[.contentType] = "text/event-stream"
                extra[.cacheControl] = "no-cache"
                return Response(status: .ok, headers: extra, body: ResponseBody(byteBuffer: ByteBuffer(bytes: MCPSession.sseEvent(bytes))))
            }
            return Self.json(.ok, bytes)
        }
    }

    /// A request with a `progressToken` from a client that accepts an event stream: the answer is
    /// an SSE stream carrying the request's `notifications/progress`, then its response. (Other
    /// requests get a single JSON body: cheaper, and what most clients prefer.) A client that
    /// goes away mid-stream cancels the request, upstream too.
    func streamed(_ body: [UInt8], session: MCPSession?, identity: Identity, headers extra: HTTPFields, parent: ServiceContext?) -> Response {
        let handler = self.handler
        return streamed(headers: extra, parent: parent) { related in
            await handler.handle(body, session: session, identity: identity, related: related)
        }
    }

    func streamed(headers extra: HTTPFields, parent: ServiceContext?,
                  _ run: @escaping @Sendable (_ related: @escaping @Sendable ([UInt8]) -> Void) async -> MCPHandler.Outcome) -> Response {
        var headers = extra
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let (events, sink) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: .bufferingNewest(256))
        // A comment every few seconds: a client that went away is noticed by the failed write
        // (and its call cancelled upstream) even while the call sends nothing.
        let keepalive = Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: Self.streamKeepaliveSeconds * 1_000_000_000)
                if !Task.isCancelled { sink.yield(Array(": keepalive\n\n".utf8)) }
            }
        }
        let work = Task {
            defer { keepalive.cancel() }
            let outcome = await ServiceContext.$current.withValue(parent) {
                await run({ sink.yield(MCPSession.sseEvent($0)) })
            }
            switch outcome {
            case .response(let bytes), .cancelled(let bytes): sink.yield(MCPSession.sseEvent(bytes))
            case .accepted: break
            }
            sink.finish()
        }
        let responseBody = ResponseBody { writer in
            do {
                for await chunk in events { try await writer.write(ByteBuffer(bytes: chunk)) }
                try await writer.finish(nil)
            } catch {
                work.cancel()  // the client is gone: stop the request upstream too
                throw error
            }
        }
        return Response(status: .ok, headers: headers, body: responseBody)
    }

    /// Seconds between the keepalive comments of a streamed reply.
    static let streamKeepaliveSeconds: UInt64 = 5

    /// Whether a body may carry `_meta.progressToken` (a byte search; the handler parses it).
    static func asksForProgress(_ body: [UInt8]) -> Bool {
        let needle = Array("progressToken".utf8)
        guard body.count >= needle.count else { return false }
        return body.withUnsafeBufferPointer { p in
            var i = 0
            while i <= p.count - needle.count {
                if p[i] == needle[0], memcmp(p.baseAddress! + i, needle, needle.count) == 0 { return true }
                i += 1
            }
            return false
        }
    }

    /// `GET /mcp`: the server-to-client event stream of a session. Carries
    /// `notifications/tools/list_changed` when the visible tools change, and a comment every 15 s
    /// so dead connections are noticed. Ends when the session ends or the proxy shuts down.
    func notificationStream(_ request: Request) async -> Response {
        if let r = originCheck(request) { return r }
        let identity: Identity
        switch await authenticate(request) {
        case .success(let i): identity = i
        case .failure(let r): return r.response
        }
        guard (request.headers[.accept] ?? "").contains("text/event-stream") else {
            var headers = HTTPFields()
            headers[.allow] = "POST, DELETE"
            return ProxyError(.notAcceptable, "GET /mcp needs Accept: text/event-stream").jsonRPCResponse(headers: headers)
        }
        guard let id = request.headers[Self.sessionHeader] else {
            return ProxyError(.invalidRequest, "missing Mcp-Session-Id header").jsonRPCResponse()
        }
        guard let session = sessions.get(id, for: identity) else {
            return ProxyError(.unknownSession, "unknown or expired session; initialize again").jsonRPCResponse()
        }
        let stream = session.openStream()
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let body = ResponseBody { writer in
            let keepalive = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: 15_000_000_000)
                    session.sendRaw(Array(": keepalive\n\n".utf8), to: stream.id)
                }
            }
            defer { keepalive.cancel(); session.closeStream(stream.id) }
            try await withGracefulShutdownHandler {
                for await chunk in stream.events {
                    try await writer.write(ByteBuffer(bytes: chunk))
                }
            } onGracefulShutdown: {
                session.closeStream(stream.id)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// Naive substring search over bytes (bodies are small; first-byte filter keeps it cheap).
    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count, let first = needle.first else { return false }
        return haystack.withUnsafeBufferPointer { h in
            var i = 0
            let last = h.count - needle.count
            while i <= last {
                if h[i] == first {
                    var j = 1
                    while j < needle.count && h[i + j] == needle[j] { j += 1 }
                    if j == needle.count { return true }
                }
                i += 1
            }
            return false
        }
    }

    /// True when the body is an initialize request (or a batch containing one).
    static func isInitialize(_ body: [UInt8]) -> Bool {
        // Cheap pre-check on the hot path: most bodies do not contain the word at all.
        let needle = Array("\"initialize\"".utf8)
        guard contains(body, needle) else { return false }
        if let env = try? JSONRPCEnvelope.parse(body) { return env.method == "initialize" }
        return false
    }
}

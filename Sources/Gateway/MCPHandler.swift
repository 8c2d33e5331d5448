import Foundation
import Logging
import MCPSecurity
import NIOConcurrencyHelpers
import ProxyCore
import Upstream

/// Handles client-side MCP messages for both transports (HTTP and stdio): the built-in tools,
/// direct-mode tools and routing to upstreams. Payloads of upstream results are spliced in
/// byte-exact.
public final class MCPHandler: Sendable {
    public static let supportedVersions = ["2025-03-26", "2025-06-18", "2025-11-25"]
    let manager: ServerManager
    let gate: ToolGate
    let settings: NIOLockedValueBox<ProxyConfig>
    let log: Logger
    let startedAt = Date()

    public init(manager: ServerManager, gate: ToolGate, config: ProxyConfig, logger: Logger) {
        self.manager = manager
        self.gate = gate
        self.settings = NIOLockedValueBox(config)
        self.log = logger
        // An upstream's log message goes to the sessions whose calls are in flight on it; with
        // none (and for list changes), to every session that may use the server.
        manager.onUpstreamNotification { [weak self] key, method, message in
            // `key` is the server, or `server@workspace` for a workspace instance: then only
            // that workspace's sessions hear it.
            let server = InstanceKey.parse(key)?.server ?? key
            // Nothing a quarantined server sends reaches a client.
            guard let self, manager.catalog.refusals["\(server):*"] == nil else { return }
            if method == "notifications/resources/updated" {
                // Subscriptions are to shared instances (docs/workspaces.md).
                if key == server { self.resourceUpdated(server: server, message) }
                return
            }
            guard let note = Self.clientNotification(server: server, method: method, message) else { return }
            if method == "notifications/message", self.deliverToCallers(server: key, note) { return }
            for f in self.broadcasters.withLockedValue({ $0 }) { f(key, note) }
        }
        manager.onServerRequest { [weak self] server, request in
            guard let self else { return JSONRPC.error(id: request.envelope.id, ProxyError(.unavailable, "mcpproxy is stopping")) }
            return await self.serverRequest(server: server, request)
        }
    }

    static let clientRequestCounter = NIOLockedValueBox(0)
    /// Resource subscriptions: per upstream server and URI, the sessions subscribed (by id).
    let subscriptions = NIOLockedValueBox<[SubscriptionKey: [String: MCPSession]]>([:])

    /// An upstream's request to a client (sampling, elicitation, roots): sent to the session whose
    /// call is in flight on that server, if the server was granted that kind
    /// (`allow_client_requests`), is not quarantined, and the client declared the capability.
    /// The client's result (or error) goes back under the upstream's id; every refusal is an
    /// error the upstream can read.
    func serverRequest(server key: String, _ request: RawMessage) async -> [UInt8] {
        // A workspace instance asks as `server@workspace`: its callers are its workspace's.
        let server = InstanceKey.parse(key)?.server ?? key
        let upstreamID = request.envelope.id
        let method = request.envelope.method ?? ""
        func refuse(_ e: ProxyError) -> [UInt8] {
            log.info("refused \(method) from upstream server \"\(server)\": \(e.message)")
            return JSONRPC.error(id: upstreamID, e)
        }
        guard let kind = ClientRequestKind(method: method) else {
            return refuse(ProxyError(.methodNotFound, "mcpproxy does not forward \(method) to clients"))
        }
        let config = settings.withLockedValue { $0.server(named: server) }
        guard config?.clientRequests.contains(kind) == true else {
            return refuse(ProxyError(.refused, "server \"\(server)\" may not send \(method): a person can add \"\(kind.rawValue)\" to its allow_client_requests"))
        }
        if manager.catalog.refusals["\(server):*"] != nil {
            return refuse(ProxyError(.refused, "server \"\(server)\" is quarantined: nothing it sends reaches a client"))
        }
        // Upstream sessions are shared, and an upstream's request does not say which call it
        // belongs to: it may only go to a caller when every caller in flight on this server is
        // the same credential holder. Otherwise one client could read, and answer, a question
        // meant for another.
        let candidates = callers.withLockedValue { ($0[key]?.values).map { Array($0) } ?? [] }
            .filter { $0.session != nil || $0.interaction != nil }
        if Set(candidates.map(\.identityKey)).count > 1 {
            return refuse(ProxyError(.unavailable, "clients with different credentials have calls in flight on server \"\(server)\" (its upstream session is shared), so mcpproxy cannot tell whose call asks \(method) and asks none of them"))
        }
        let caller = candidates.first
        let timeout = settings.withLockedValue { $0.callTimeout }
        if let interaction = caller?.interaction {
            // A sessionless client: the question goes back in an input_required result.
            guard interaction.capabilities?[kind.rawValue] != nil else {
                return refuse(ProxyError(.unsupported, "the calling client did not declare the \(kind.rawValue) capability"))
            }
            do {
                let answer = try await interaction.ask(method: method, params: request.paramsBytes, timeout: timeout)
                return answer.withUnsafeBufferPointer { JSONRPC.result(id: upstreamID ?? Array("null".utf8), rawResult: $0) }
            } catch let e as ProxyError {
                return refuse(e)
            } catch {
                return refuse(ProxyError(.unavailable, "the client's interactive request ended before it answered \(method)"))
            }
        }
        guard let caller, let session = caller.session else {
            return refuse(ProxyError(.unavailable, "no client has a call in flight on server \"\(server)\" to answer \(method)"))
        }
        guard session.clientCapabilities?[kind.rawValue] != nil else {
            return refuse(ProxyError(.unsupported, "the calling client did not declare the \(kind.rawValue) capability"))
        }
        let n = Self.clientRequestCounter.withLockedValue { v -> Int in v += 1; return v }
        let id = JSONValue.quoted("mcpx-req-\(n)")
        var out = Array(#"{"jsonrpc":"2.0","id":"#.utf8) + Array(id.utf8) + Array(#","method":"#.utf8) + Array(JSONValue.quoted(method).utf8)
        if let p = request.paramsBytes { out += Array(#","params":"#.utf8) + Array(p) }
        out.append(UInt8(ascii: "}"))
        do {
            let answer = try await session.requestClient(id: id, out, send: caller.notify, timeout: timeout)
            guard let reply = RawMessage(bytes: answer) else {
                return refuse(ProxyError(.upstreamFailed, "the client's answer to \(method) was not JSON-RPC"))
            }
            if let e = reply.rpcError { return JSONRPC.error(id: upstreamID, e) }
            guard let r = reply.resultBytes else { return refuse(ProxyError(.upstreamFailed, "the client's answer to \(method) had no result")) }
            return r.withUnsafeBufferPointer { JSONRPC.result(id: upstreamID ?? Array("null".utf8), rawResult: $0) }
        } catch let e as ProxyError {
            return refuse(e)
        } catch {
            return refuse(ProxyError(.unavailable, "the client's session ended before it answered \(method)"))
        }
    }

    /// Front ends register here to send an upstream notification (already rewritten for
    /// clients) to their sessions that may use `server`.
    public func onBroadcast(_ f: @escaping @Sendable (_ server: String, _ note: [UInt8]) -> Void) {
        broadcasters.withLockedValue { $0.append(f) }
    }
    let broadcasters = NIOLockedValueBox<[@Sendable (String, [UInt8]) -> Void]>([])

    public func updateConfig(_ c: ProxyConfig) { settings.withLockedValue { $0 = c } }

    /// The outcome of handling one HTTP body or stdio line.
    public enum Outcome: Sendable {
        case response([UInt8])
        /// Only notifications/responses were received: nothing to send (HTTP 202).
        case accepted
        /// The client cancelled the request. Over stdio nothing is sent (MCP: no response to a
        /// cancelled request); an HTTP request still open gets this error response to end it.
        case cancelled([UInt8])
    }

    /// What a request may send its client before its response: `notifications/progress` for the
    /// client's `progressToken`, on the HTTP POST's event stream or the stdio pipe.
    struct RequestContext: Sendable {
        /// The client's `_meta.progressToken`, as its JSON text.
        var progressToken: String?
        var related: (@Sendable ([UInt8]) -> Void)?
        /// The calling session (its id keys the callers of a server), and where its
        /// notifications go: the request's own stream when it has one, else the session's.
        var sessionKey: String?
        var notify: (@Sendable ([UInt8]) -> Void)?
        var session: MCPSession?
        var interaction: Interaction?
        var identityKey: String = ""
    }

    /// Per server, the sessions with a request in flight there (with a count, one session may
    /// have several), so an upstream's log messages go to the sessions whose calls caused them.
    let callers = NIOLockedValueBox<[String: [String: Caller]]>([:])
    struct Caller {
        var count: Int
        var notify: @Sendable ([UInt8]) -> Void
        var session: MCPSession?
        /// A sessionless client's interactive request (questions go back as input_required).
        var interaction: Interaction?
        /// Who is calling (`Identity.key`).
        var identityKey: String
    }

    /// Runs `work` with the current request's session registered as a caller of `server`.
    func asCaller<T>(of server: String, _ work: () async throws -> T) async rethrows -> T {
        guard let ctx = Self.current, let key = ctx.sessionKey, let notify = ctx.notify else { return try await work() }
        callers.withLockedValue { c in
            let n = c[server]?[key]?.count ?? 0
            c[server, default: [:]][key] = Caller(count: n + 1, notify: notify, session: ctx.session, interaction: ctx.interaction,
                                                  identityKey: ctx.identityKey)
        }
        defer {
            callers.withLockedValue { c in
                guard var e = c[server]?[key] else { return }
                e.count -= 1
                if e.count <= 0 { c[server]?.removeValue(forKey: key) } else { c[server]?[key] = e }
                if c[server]?.isEmpty == true { c.removeValue(forKey: server) }
            }
        }
        return try await work()
    }

    /// Sends an upstream's notification to the sessions with a call in flight on it; false when
    /// there are none.
    func deliverToCallers(server: String, _ note: [UInt8]) -> Bool {
        let sinks = callers.withLockedValue { $0[server].map { Array($0.values.map(\.notify)) } ?? [] }
        for s in sinks { s(note) }
        return !sinks.isEmpty
    }
    @TaskLocal static var current: RequestContext?
    /// The interactive request (SEP-2322) whose call runs in this task, if any.
    @TaskLocal static var interaction: Interaction?
    /// Interactive requests of sessionless clients waiting for their retry.
    let interactions = Interactions()
    /// Upstream progress tokens are the proxy's own (clients share upstream sessions, so their
    /// tokens could collide there).
    static let progressCounter = NIOLockedValueBox(0)
    /// Requests a client can cancel and that can report progress: the ones forwarded upstream.
    static let forwardedMethods: Set<String> = ["tools/call", "resources/read", "prompts/get", "completion/complete"]

    /// Handles a message or a batch from `identity` (for HTTP, the request's credential; for
    /// stdio, the pipe's identity). `related` carries messages about a request before its
    /// response (progress); without it, progress is not asked of upstreams.
    public func handle(_ body: [UInt8], session: MCPSession?, identity: Identity,
                       related: (@Sendable ([UInt8]) -> Void)? = nil) async -> Outcome {
        let first = body.first { !JSONSpan.isSpace($0) }
        if first == UInt8(ascii: "[") {
            let parts: [Range<Int>]? = body.withUnsafeBufferPointer { JSONSpan.elements($0, 0..<$0.count) }
            guard let parts else { return .response(JSONRPC.error(id: nil, ProxyError(.parseError, "parse error: the body is not valid JSON"))) }
            if parts.isEmpty { return .response(JSONRPC.error(id: nil, ProxyError(.invalidRequest, "invalid request: empty batch"))) }
            var responses: [[UInt8]] = []
            for r in parts {
                switch await handleOne(Array(body[r]), session: session, identity: identity, related: related) {
                case .response(let bytes), .cancelled(let bytes): responses.append(bytes)
                case .accepted: break
                }
            }
            if responses.isEmpty { return .accepted }
            var out: [UInt8] = [UInt8(ascii: "[")]
            for (i, r) in responses.enumerated() { if i > 0 { out.append(UInt8(ascii: ",")) }; out += r }
            out.append(UInt8(ascii: "]"))
            return .response(out)
        }
        return await handleOne(body, session: session, identity: identity, related: related)
    }

    func handleOne(_ body: [UInt8], session: MCPSession?, identity: Identity,
                   related: (@Sendable ([UInt8]) -> Void)? = nil) async -> Outcome {
        let env: JSONRPCEnvelope
        do {
            env = try JSONRPCEnvelope.parse(body)
        } catch {
            switch error {
            case .parse:
                return .response(JSONRPC.error(id: nil, ProxyError(.parseError, "parse error: the body is not valid JSON")))
            case .invalid(let why):
                return .response(JSONRPC.error(id: Self.bestEffortID(body), ProxyError(.invalidRequest, "invalid request: \(why)")))
            }
        }
        if env.kind == .response {
            // The client's answer to a request the proxy sent it for an upstream (sampling, ...).
            if let session, let rid = env.id { session.clientResponded(id: String(decoding: rid, as: UTF8.self), body) }
            return .accepted
        }
        if env.kind == .notification, env.method == "notifications/cancelled" {
            // A request of this session still running stops here and upstream; an unknown or
            // finished one is ignored, as MCP asks.
            if let session, let rid = Self.member(body, env.params, "requestId") {
                if session.cancelRequest(rid) { log.debug("client cancelled request \(rid)") }
            }
            return .accepted
        }
        guard env.kind == .request, let method = env.method, let id = env.id else { return .accepted }
        manager.metrics.request(method: method)
        let traces = manager.traces
        guard traces.enabled else { return await dispatch(method, id: id, body: body, env: env, session: session, identity: identity, related: related) }
        var attributes = ["mcp.method.name": method, "jsonrpc.request.id": String(decoding: id, as: UTF8.self)]
        if let session { attributes["mcp.session.id"] = session.id }
        return await traces.span(method, kind: .server, attributes: attributes, failed: Self.failure) {
            await dispatch(method, id: id, body: body, env: env, session: session, identity: identity, related: related)
        }
    }

    /// What makes a request's span an error: a JSON-RPC error or an `isError` tool result.
    @Sendable static func failure(_ outcome: Outcome) -> String? {
        switch outcome {
        case .accepted: return nil
        case .cancelled: return "cancelled"
        case .response(let bytes):
            guard let reply = RawMessage(bytes: bytes) else { return nil }
            if reply.errorBytes != nil { return "JSON-RPC error" }
            if member(reply.bytes, reply.envelope.result, "isError") == "true" { return "tool error" }
            return nil
        }
    }

    func dispatch(_ method: String, id: [UInt8], body: [UInt8], env: JSONRPCEnvelope, session: MCPSession?, identity: Identity,
                  related: (@Sendable ([UInt8]) -> Void)?) async -> Outcome {
        do {
            if Self.forwardedMethods.contains(method) {
                let toSession: (@Sendable ([UInt8]) -> Void)? = session.map { s in { @Sendable bytes in s.send(bytes) } }
                let interaction = Self.interaction
                let quiet: (@Sendable ([UInt8]) -> Void)? = interaction.map { _ in { @Sendable _ in } }
                let ctx = RequestContext(progressToken: related == nil ? nil : Self.progressToken(body, env), related: related,
                                         sessionKey: interaction.map { "interaction:\($0.state)" } ?? session?.id,
                                         notify: related ?? toSession ?? quiet,
                                         session: session, interaction: interaction, identityKey: identity.key)
                let run: @Sendable () async throws -> [UInt8] = {
                    try await MCPHandler.$current.withValue(ctx) {
                        try await self.forwarded(method, id: id, body: body, env: env, identity: identity)
                    }
                }
                if let session { return .response(try await session.track(String(decoding: id, as: UTF8.self), run)) }
                return .response(try await run())
            }
            switch method {
            case "initialize": return .response(initialize(id: id, body: body, env: env, session: session))
            case ModernProtocol.discoverMethod: return .response(JSONRPC.result(id: id, json: Self.discoverResult()))
            case "ping": return .response(JSONRPC.result(id: id, json: "{}"))
            case "tools/list": return .response(JSONRPC.result(id: id, json: toolsList(for: identity)))
            case "resources/list": return .response(JSONRPC.result(id: id, json: await resourcesList(identity, templates: false)))
            case "resources/templates/list": return .response(JSONRPC.result(id: id, json: await resourcesList(identity, templates: true)))
            case "prompts/list": return .response(JSONRPC.result(id: id, json: await promptsList(identity)))
            case "logging/setLevel": return .response(try await setLevel(id: id, params(body, env), identity: identity))
            case "resources/subscribe", "resources/unsubscribe":
                return .response(try await subscription(id: id, params(body, env), identity: identity, session: session,
                                                        subscribe: method == "resources/subscribe"))
            default:
                return .response(JSONRPC.error(id: id, ProxyError(.methodNotFound, "method not found: \(method)")))
            }
        } catch is CancellationError {
            return .cancelled(JSONRPC.error(id: id, ProxyError(.cancelled, "request cancelled")))
        } catch let e as ProxyError {
            return .response(JSONRPC.error(id: id, e))
        } catch {
            log.error("internal error handling \(method): \(error)")
            return .response(JSONRPC.error(id: id, ProxyError(.internalError, "internal error")))
        }
    }

    /// The requests forwarded upstream (cancellable, with progress).
    func forwarded(_ method: String, id: [UInt8], body: [UInt8], env: JSONRPCEnvelope, identity: Identity) async throws -> [UInt8] {
        switch method {
        case "tools/call": return try await toolsCall(id: id, body: body, env: env, identity: identity)
        case "resources/read": return try await resourcesRead(id: id, params(body, env), identity: identity)
        case "prompts/get": return try await promptsGet(id: id, params(body, env), identity: identity)
        case "completion/complete": return try await complete(id: id, params(body, env), identity: identity)
        default: throw ProxyError(.methodNotFound, "method not found: \(method)")
        }
    }

    /// The JSON text of member `key` of the object at `range` (nil when absent).
    static func member(_ body: [UInt8], _ range: Range<Int>?, _ key: String) -> String? {
        guard let range else { return nil }
        return body.withUnsafeBufferPointer { p in
            guard let m = JSONSpan.members(p, range), let r = m.first(where: { $0.key == key })?.value else { return nil }
            return String(decoding: p[r], as: UTF8.self)
        }
    }

    /// `params._meta.progressToken` of a request, as its JSON text.
    static func progressToken(_ body: [UInt8], _ env: JSONRPCEnvelope) -> String? {
        guard let pr = env.params else { return nil }
        return body.withUnsafeBufferPointer { p in
            guard let m = JSONSpan.members(p, pr), let meta = m.first(where: { $0.key == "_meta" })?.value,
                  let mm = JSONSpan.members(p, meta), let t = mm.first(where: { $0.key == "progressToken" })?.value else { return nil }
            let c = p[t.lowerBound]
            // A token is a string or a number (MCP); anything else is not one.
            guard c == UInt8(ascii: "\"") || c == UInt8(ascii: "-") || (c >= 0x30 && c <= 0x39) else { return nil }
            return String(decoding: p[t], as: UTF8.self)
        }
    }

    /// When the current request asked for progress: a token of the proxy's own for the upstream
    /// request, and the handler that hands each upstream progress notification to the client
    /// under the client's token.
    static func upstreamProgress() -> (token: String, forward: (token: String, handler: @Sendable (RawMessage) -> Void))? {
        guard let ctx = current, let original = ctx.progressToken, let sink = ctx.related,
              let originalValue = try? JSONValue.parse(Data(original.utf8)) else { return nil }
        let n = progressCounter.withLockedValue { v -> Int in v += 1; return v }
        let token = "mcpx-progress-\(n)"
        return (token, (JSONValue.quoted(token), { message in
            guard let raw = message.paramsBytes, case .object(var params)? = try? JSONValue.parse(Data(raw)) else { return }
            params["progressToken"] = originalValue
            sink(JSONRPC.notification(method: "notifications/progress", params: .object(params)))
        }))
    }

    static func bestEffortID(_ body: [UInt8]) -> [UInt8]? {
        body.withUnsafeBufferPointer { p in
            guard let m = JSONSpan.members(p, 0..<p.count), let r = m.first(where: { $0.key == "id" })?.value else { return nil }
            let c = p[r.lowerBound]
            guard c == UInt8(ascii: "\"") || c == UInt8(ascii: "-") || (c >= 0x30 && c <= 0x39) else { return nil }
            return Array(p[r])
        }
    }

    // MARK: MCP 2026-07-28 (sessionless)

    /// Every version the gateway speaks: handshake-era ones (via `initialize`), then modern ones.
    public static let allVersions = supportedVersions + ModernProtocol.versions

    /// Whether `body` goes to `handleModern` rather than the session path.
    public static func isModern(_ body: [UInt8], versionHeader: String?) -> Bool {
        ModernProtocol.isModern(body, versionHeader: versionHeader, legacyVersions: supportedVersions)
    }

    /// The validation ladder of a modern request (see `ModernProtocol.classify`); nil when valid
    /// or not a request (a notification, answered 202), else the error response.
    public static func modernRejection(_ body: [UInt8], headers: ModernProtocol.Headers?) -> [UInt8]? {
        guard let env = try? JSONRPCEnvelope.parse(body), env.kind == .request else { return nil }
        if case .failure(let e) = ModernProtocol.classify(body, env, headers: headers, supported: allVersions) {
            return JSONRPC.error(id: env.id, e)
        }
        return nil
    }

    /// One modern request, already past the ladder over HTTP (`headers` nil: check the envelope
    /// here, as over stdio). It is handled exactly as the same request of a handshake-era
    /// session would be, with the caller's identity of this request (no session over HTTP:
    /// `session` is nil; stdio passes its pipe's), and its result gets the fields the modern
    /// schema requires. The modern protocol has no client notifications: they are accepted and
    /// dropped (in 2026-07-28 cancellation is closing the request's stream; not noticed here yet).
    public func handleModern(_ body: [UInt8], checked: Bool, session: MCPSession?, identity: Identity,
                             related: (@Sendable ([UInt8]) -> Void)? = nil) async -> Outcome {
        guard let env = try? JSONRPCEnvelope.parse(body) else { return await handleOne(body, session: session, identity: identity, related: related) }
        guard env.kind == .request, let method = env.method else { return .accepted }
        if !checked, let rejection = Self.modernRejection(body, headers: nil) { return .response(rejection) }
        if Self.interactiveMethods.contains(method), let id = env.id,
           let outcome = await interactive(body, env, id: id, method: method, session: session, identity: identity, related: related) {
            switch outcome {
            case .response(let bytes): return .response(ModernProtocol.stampResult(bytes, method: method))
            case let other: return other
            }
        }
        switch await handleOne(ModernProtocol.stripEnvelope(body), session: session, identity: identity, related: related) {
        case .response(let bytes): return .response(ModernProtocol.stampResult(bytes, method: method))
        case let other: return other
        }
    }

    /// The `server/discover` result: the versions, what the gateway serves (no `listChanged`:
    /// 2026-07-28 delivers those through `subscriptions/listen`, not implemented), its
    /// instructions and, in `_meta`, who it is.
    static func discoverResult() -> String {
        let result: JSONValue = [
            "supportedVersions": .array(allVersions.map { .string($0) }),
            "capabilities": ["tools": [:], "resources": [:], "prompts": [:], "completions": [:]],
            "instructions": .string(instructions),
            "resultType": "complete", "ttlMs": 0, "cacheScope": "private",
            "_meta": [ModernProtocol.serverInfoKey: ["name": "mcpproxy", "version": .string(ProxyVersion.current)]],
        ]
        return result.serialized()
    }

    static let instructions = "mcpproxy federates many MCP servers. Use retrieve_tools to search their tools, then call_tool (or call_tool_read/_write/_destructive) with the name it returns (server:tool)."

    // MARK: initialize

    func initialize(id: [UInt8], body: [UInt8], env: JSONRPCEnvelope, session: MCPSession?) -> [UInt8] {
        let params = env.params.flatMap { try? JSONValue.parse(Data(body[$0])) }
        let requested = params?["protocolVersion"]?.stringValue ?? ""
        let version = Self.supportedVersions.contains(requested) ? requested : Self.supportedVersions.last!
        session?.protocolVersion = version
        session?.clientName = params?["clientInfo"]?["name"]?.stringValue ?? ""
        session?.clientCapabilities = params?["capabilities"]
        let result: JSONValue = [
            "protocolVersion": .string(version),
            "capabilities": ["tools": ["listChanged": true], "resources": ["subscribe": true, "listChanged": true],
                             "prompts": ["listChanged": true], "completions": [:], "logging": [:]],
            "serverInfo": ["name": "mcpproxy", "version": .string(ProxyVersion.current)],
            "instructions": .string(Self.instructions),
        ]
        return JSONRPC.result(id: id, json: result.serialized())
    }

    // MARK: tools/list

    static let builtinTools: [JSONValue] = {
        let callArgs: JSONValue = [
            "type": "object",
            "properties": [
                "name": ["type": "string", "description": "Tool to call, as server:tool (from retrieve_tools)."],
                "args": ["type": "object", "description": "Arguments for the tool, as an object."],
                "args_json": ["type": "string", "description": "Arguments as a JSON string (alternative to args)."],
            ],
            "required": ["name"],
        ]
        func call(_ name: String, _ what: String, _ annotations: JSONValue) -> JSONValue {
            ["name": .string(name), "description": .string(what), "inputSchema": callArgs, "annotations": annotations]
        }
        return [
            ["name": "retrieve_tools",
             "description": "Search the tools of all connected upstream MCP servers (BM25 over names, descriptions and parameters). Returns names as server:tool with their input schemas.",
             "inputSchema": ["type": "object",
                             "properties": ["query": ["type": "string", "description": "What you want to do, in words."],
                                            "limit": ["type": "integer", "description": "Maximum results (default 10, at most 50)."]],
                             "required": ["query"]],
             "annotations": ["readOnlyHint": true]],
            call("call_tool", "Call an upstream tool by its server:tool name.", ["openWorldHint": true]),
            call("call_tool_read", "Call an upstream tool that only reads (refused unless the tool is annotated readOnlyHint: true).", ["readOnlyHint": true]),
            call("call_tool_write", "Call an upstream tool that may write (refused for tools annotated destructive).", ["readOnlyHint": false, "destructiveHint": false]),
            call("call_tool_destructive", "Call an upstream tool that may delete or overwrite.", ["readOnlyHint": false, "destructiveHint": true]),
            ["name": "upstream_servers",
             "description": "Manage upstream servers: list, add, remove, enable, disable, restart. Changes are written to the config file; added servers start quarantined.",
             "inputSchema": ["type": "object",
                             "properties": ["operation": ["type": "string", "enum": ["list", "add", "remove", "enable", "disable", "restart"]],
                                            "name": ["type": "string"], "command": ["type": "string"],
                                            "args": ["type": "array", "items": ["type": "string"]],
                                            "env": ["type": "object"], "url": ["type": "string"],
                                            "protocol": ["type": "string", "enum": ["stdio", "http", "sse"]],
                                            "working_dir": ["type": "string"]],
                             "required": ["operation"]],
             "annotations": ["destructiveHint": true]],
        ]
    }()

    /// The built-in tools `identity` may use: `call_tool_write`/`_destructive` only up to its
    /// intent ceiling, `upstream_servers` only when it may manage servers.
    static func builtinTools(for identity: Identity) -> [JSONValue] {
        builtinTools.filter { t in
            switch t["name"]?.stringValue {
            case "call_tool_write": return identity.ceiling >= .write
            case "call_tool_destructive": return identity.ceiling >= .destructive
            case "upstream_servers": return identity.manageServers
            default: return true
            }
        }
    }

    /// Built-in tools, then (direct mode) each visible upstream tool as the upstream sent it,
    /// byte for byte but for its name (`server__tool`).
    func toolsList(for identity: Identity) -> String {
        var out = Array(#"{"tools":["#.utf8)
        for (i, t) in Self.builtinTools(for: identity).enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out += Array(t.serialized().utf8)
        }
        if settings.withLockedValue({ $0.routingMode }) == .direct {
            let catalog = manager.catalog
            for key in catalog.tools.keys.sorted() {
                let ct = catalog.tools[key]!
                guard identity.allows(server: ct.server, tool: ct.tool) else { continue }
                out.append(UInt8(ascii: ","))
                out += ct.tool.bytes(renamedTo: ct.directName)
            }
        }
        out += Array("]}".utf8)
        return String(decoding: out, as: UTF8.self)
    }

    /// A signature of what `identity` sees in `tools/list` and `retrieve_tools`, so the event
    /// stream tells a session only about changes to its own view.
    static func visibleSignature(_ catalog: Catalog, for identity: Identity) -> Int {
        if identity.isUnrestricted { return catalog.signature }
        var h = Hasher()
        for key in catalog.tools.keys.sorted() {
            let ct = catalog.tools[key]!
            guard identity.allows(server: ct.server, tool: ct.tool) else { continue }
            h.combine(key)
            h.combine(ct.tool.raw)
        }
        return h.finalize()
    }

    // MARK: tools/call

    /// An input or policy problem of a built-in tool call: answered as a tool result with
    /// `isError: true` (SEP-1303), so the model can read it and correct itself.
    struct ToolFailure: Error {
        var message: String
    }

    static func toolError(_ message: String) -> String {
        JSONValue.object(["content": [["type": "text", "text": .string(message)]], "isError": true]).serialized()
    }

    func toolsCall(id: [UInt8], body: [UInt8], env: JSONRPCEnvelope, identity: Identity) async throws -> [UInt8] {
        guard let pr = env.params else { throw ProxyError(.invalidArgument, "tools/call needs params with a \"name\"") }
        let (name, argsRange): (String?, Range<Int>?) = body.withUnsafeBufferPointer { p in
            guard let m = JSONSpan.members(p, pr) else { return (nil, nil) }
            let n = m.first { $0.key == "name" }.flatMap { JSONSpan.decodeString(p, $0.value) }
            return (n, m.first { $0.key == "arguments" }?.value)
        }
        guard let name else { throw ProxyError(.invalidArgument, "tools/call needs a string \"name\"") }
        let builtin = Self.builtinTools(for: identity).contains { $0["name"]?.stringValue == name }
        do {
            switch name {
            case "retrieve_tools" where builtin: return JSONRPC.result(id: id, json: try await retrieveTools(body, argsRange, identity: identity))
            case "call_tool" where builtin: return try await callTool(id: id, body, argsRange, intent: .any, identity: identity)
            case "call_tool_read" where builtin: return try await callTool(id: id, body, argsRange, intent: .read, identity: identity)
            case "call_tool_write" where builtin: return try await callTool(id: id, body, argsRange, intent: .write, identity: identity)
            case "call_tool_destructive" where builtin: return try await callTool(id: id, body, argsRange, intent: .destructive, identity: identity)
            case "upstream_servers" where builtin: return JSONRPC.result(id: id, json: try await upstreamServers(body, argsRange, identity: identity))
            default:
                if settings.withLockedValue({ $0.routingMode }) == .direct, let sep = name.range(of: "__") {
                    let qualified = "\(name[..<sep.lowerBound]):\(name[sep.upperBound...])"
                    let raw = argsRange.map { Array(body[$0]) } ?? Array("{}".utf8)
                    return try await route(id: id, qualified: qualified, rawArgs: raw, intent: .any, identity: identity, direct: true)
                }
                // An unknown tool of tools/call itself is a protocol error (MCP 2025-11-25, tools).
                throw ProxyError(.invalidArgument, unknownToolMessage(name, identity: identity, builtins: true))
            }
        } catch let failure as ToolFailure {
            return JSONRPC.result(id: id, json: Self.toolError(failure.message))
        }
    }

    func arguments(_ body: [UInt8], _ range: Range<Int>?) throws -> JSONValue {
        guard let range else { return .object([:]) }
        guard let v = try? JSONValue.parse(Data(body[range])), case .object = v else {
            throw ProxyError(.invalidArgument, "\"arguments\" must be an object")
        }
        return v
    }

    func retrieveTools(_ body: [UInt8], _ range: Range<Int>?, identity: Identity) async throws -> String {
        let args = try arguments(body, range)
        guard let query = args["query"]?.stringValue, !query.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ToolFailure(message: "retrieve_tools needs a non-empty \"query\" (what you want to do, in words)")
        }
        let limit = min(50, max(1, args["limit"]?.intValue ?? 10))
        // Right after start, give servers a moment, then answer from what is ready and name the
        // rest (`starting`): with hundreds of servers, waiting for all would block the agent.
        if Date().timeIntervalSince(startedAt) < StartupWait.window {
            let starting = manager.startingServers().filter { identity.mayUse(server: $0) }
            if !starting.isEmpty { await manager.waitForStartup(timeout: StartupWait.search, only: Set(starting)) }
        }
        let catalog = manager.catalog
        let hits = identity.isUnrestricted
            ? catalog.index.search(query, limit: limit)
            : catalog.index.search(query, limit: limit) { identity.allows(server: $0.server, tool: $0.tool) }
        let tools: [JSONValue] = hits.map { h in
            [
                "name": .string(h.tool.qualifiedName), "server": .string(h.tool.server),
                "description": .string(h.tool.tool.description), "inputSchema": h.tool.tool.inputSchema,
                "annotations": h.tool.tool.annotations ?? .object([:]),
                "score": .number((h.score * 1000).rounded() / 1000),
            ]
        }
        var structured: [String: JSONValue] = ["tools": .array(tools), "query": .string(query)]
        var notes: [String] = []
        if let held = heldSummary(catalog, identity: identity) { structured["held"] = held.json; notes.append(held.note) }
        // Answered from what is ready; servers still coming up are named so the agent can retry.
        let starting = manager.startingServers().filter { identity.mayUse(server: $0) }
        if !starting.isEmpty {
            structured["starting"] = .array(starting.map { .string($0) })
            notes.append("\(starting.count) server(s) still starting (\(starting.joined(separator: ", "))): their tools are not searchable yet; search again shortly.")
        }
        if !notes.isEmpty { structured["note"] = .string(notes.joined(separator: " ")) }
        return Self.textResult(.object(structured))
    }

    /// Servers and tools in the caller's scope that are held for a person's approval, so an
    /// agent can tell "no such tool" from "not approved yet".
    func heldSummary(_ catalog: Catalog, identity: Identity) -> (json: JSONValue, note: String)? {
        var servers: [String] = []
        var tools = 0
        for (key, _) in catalog.refusals {
            guard let colon = key.firstIndex(of: ":") else { continue }
            let server = String(key[..<colon])
            guard identity.mayUse(server: server) else { continue }
            if key[key.index(after: colon)...] == "*" { servers.append(server) } else { tools += 1 }
        }
        let pending = manager.pendingNames.filter { identity.mayUse(server: $0) }
        let monitorHeld = catalog.held.keys.filter { identity.mayUse(server: $0) }.sorted()
        guard !servers.isEmpty || tools > 0 || !pending.isEmpty || !monitorHeld.isEmpty else { return nil }
        var parts: [String] = []
        if !servers.isEmpty { parts.append("\(servers.count) server(s) quarantined (\(servers.sorted().joined(separator: ", ")))") }
        if tools > 0 { parts.append("\(tools) tool(s) held for review") }
        if !pending.isEmpty { parts.append("\(pending.count) server(s) awaiting approval to start (\(pending.sorted().joined(separator: ", ")))") }
        var note = parts.isEmpty ? "" : parts.joined(separator: "; ") + ". Their tools are not searchable until a person approves them (`mcpproxy upstream approve NAME`, or POST /api/v1/servers/NAME/approve)."
        if !monitorHeld.isEmpty {
            note += (note.isEmpty ? "" : " ") + "\(monitorHeld.count) server(s) held by the runtime monitor (\(monitorHeld.joined(separator: ", "))): stopped until a person releases them (`mcpproxy upstream release NAME`, or POST /api/v1/servers/NAME/release)."
        }
        var json: [String: JSONValue] = ["quarantined_servers": .array(servers.sorted().map { .string($0) }), "held_tools": .number(Double(tools)),
                                         "awaiting_approval": .array(pending.sorted().map { .string($0) })]
        if !monitorHeld.isEmpty { json["held_by_monitor"] = .array(monitorHeld.map { .string($0) }) }
        return (.object(json), note)
    }

    static func textResult(_ v: JSONValue, isError: Bool = false) -> String {
        let text = v.serialized()
        return JSONValue.object([
            "content": [["type": "text", "text": .string(text)]],
            "structuredContent": v,
            "isError": .bool(isError),
        ]).serialized()
    }

    func callTool(id: [UInt8], _ body: [UInt8], _ range: Range<Int>?, intent: CallIntent, identity: Identity) async throws -> [UInt8] {
        guard let range else { throw ToolFailure(message: "call_tool needs arguments {\"name\": \"server:tool\", \"args\": {...}}") }
        var target: String?
        var rawArgs: [UInt8]?
        var argsJSON: String?
        var badArgs = false
        var notObject = false
        body.withUnsafeBufferPointer { p in
            guard let m = JSONSpan.members(p, range) else { notObject = true; return }
            for (k, v) in m {
                switch k {
                case "name": target = JSONSpan.decodeString(p, v)
                case "args", "arguments":
                    if p[v.lowerBound] == UInt8(ascii: "{") { rawArgs = Array(p[v]) }
                    else if p[v.lowerBound] != UInt8(ascii: "n") { badArgs = true }
                case "args_json": argsJSON = JSONSpan.decodeString(p, v)
                default: break
                }
            }
        }
        if notObject { throw ProxyError(.invalidArgument, "\"arguments\" must be an object") }
        if badArgs { throw ToolFailure(message: "\"args\" must be an object of the tool's arguments") }
        guard let target, !target.isEmpty else { throw ToolFailure(message: "call_tool needs \"name\" as server:tool (use retrieve_tools to find it)") }
        if rawArgs == nil, let argsJSON, !argsJSON.trimmingCharacters(in: .whitespaces).isEmpty {
            let bytes = Array(argsJSON.utf8)
            let ok = bytes.withUnsafeBufferPointer { p in JSONSpan.members(p, 0..<p.count) != nil }
            guard ok else { throw ToolFailure(message: "\"args_json\" must hold a JSON object") }
            rawArgs = bytes
        }
        return try await route(id: id, qualified: target, rawArgs: rawArgs ?? Array("{}".utf8), intent: intent,
                               identity: identity, direct: false)
    }

    /// "unknown tool" with the closest names among those `identity` may see, and nothing else:
    /// the same answer whether the tool does not exist or lies outside the caller's scope.
    func unknownToolMessage(_ name: String, identity: Identity, builtins: Bool) -> String {
        let catalog = manager.catalog
        var names = catalog.tools.values.filter { identity.allows(server: $0.server, tool: $0.tool) }.map(\.qualifiedName)
        if builtins { names += Self.builtinTools(for: identity).compactMap { $0["name"]?.stringValue } }
        let close = ToolIndex.closest(to: name, among: names)
        let hint = close.isEmpty ? "no tools are available" : "closest: \(close.joined(separator: ", "))"
        return "unknown tool \"\(name)\"; \(hint)"
    }

    /// Routes a call to `server:tool`, forwarding the upstream's result (or error) byte-exact.
    /// Anything the caller may not see is answered exactly like a tool that does not exist; a
    /// refusal it may see (quarantine, held, intent) is a tool result with `isError`.
    func route(id: [UInt8], qualified: String, rawArgs: [UInt8], intent: CallIntent, identity: Identity,
               direct: Bool) async throws -> [UInt8] {
        var catalog = manager.catalog
        if catalog.tools[qualified] == nil, let server = FederatedName.split(qualified)?.server, manager.isConfigured(server),
           Date().timeIntervalSince(startedAt) < StartupWait.window || !catalog.evaluated.contains(server)
            || catalog.servers[server]?.state != .ready {
            // The call's server may still be coming up (right after start, or restarted by a
            // reload) or its tools may still be judged: wait for it (only it), bounded.
            await manager.waitForStartup(timeout: StartupWait.call, only: [server])
            catalog = manager.catalog
        }
        func unknown() -> Error {
            let message = unknownToolMessage(qualified, identity: identity, builtins: false)
            return direct ? ProxyError(.invalidArgument, message) : ToolFailure(message: message)
        }
        guard let ct = catalog.lookup(qualified), identity.allows(server: ct.server, tool: ct.tool) else {
            let refusal = await refusal(qualified: qualified, catalog: catalog, identity: identity, direct: direct)
            countRefused(qualified, catalog: catalog)
            throw refusal
        }
        if let conflict = intent.conflict(with: ct.tool) {
            manager.metrics.toolCall(server: ct.server, tool: ct.tool.name, configured: true, inCatalogue: true, outcome: .refused)
            throw ToolFailure(message: "call_tool_\(intent.rawValue) refused for \"\(qualified)\": \(conflict)")
        }
        guard var server = catalog.servers[ct.server] else {
            manager.metrics.toolCall(server: ct.server, tool: ct.tool.name, configured: true, inCatalogue: true, outcome: .refused)
            throw unknown()
        }
        // `instance: "workspace"`: the call goes to the caller's workspace's own instance
        // (started on first use); the shared entry is only the definition the gate judged.
        var workspaceKey: InstanceKey? = nil
        if settings.withLockedValue({ $0.server(named: ct.server)?.instance }) == .workspace {
            guard let ws = identity.workspace else {
                manager.metrics.toolCall(server: ct.server, tool: ct.tool.name, configured: true, inCatalogue: true, outcome: .refused)
                throw ToolFailure(message: "server \"\(ct.server)\" runs one instance per workspace, and this caller belongs to no workspace; use a token that is a member of one")
            }
            do { server = try await manager.acquireInstance(server: ct.server, workspace: ws) } catch let e as ProxyError {
                manager.metrics.toolCall(server: ct.server, tool: ct.tool.name, configured: true, inCatalogue: true, outcome: .refused)
                throw ToolFailure(message: e.message)
            }
            workspaceKey = InstanceKey(server: ct.server, workspace: ws)
            if let drifted = Self.instanceDrift(server.tools, server: ct.server, catalog: manager.catalog) {
                await manager.releaseInstance(server: ct.server, workspace: ws)
                log.warning("held workspace instance \(ct.server)@\(ws): tool \"\(drifted)\" differs from the approved definition")
                manager.metrics.toolCall(server: ct.server, tool: ct.tool.name, configured: true, inCatalogue: true, outcome: .refused)
                throw ToolFailure(message: "server \"\(ct.server)\" is held for this workspace: its instance lists tool \"\(drifted)\" differently from the approved definition (a possible rug pull); a person must review it")
            }
        }
        let instance = workspaceKey
        let callerKey = server.routingKey
        var params = Array(#"{"name":"#.utf8)
        params += Array(JSONValue.quoted(ct.tool.name).utf8)
        params += Array(#","arguments":"#.utf8)
        params += rawArgs
        let progress = Self.upstreamProgress()
        if let progress {
            params += Array(#","_meta":{"progressToken":"#.utf8) + Array(JSONValue.quoted(progress.token).utf8)
            params.append(UInt8(ascii: "}"))
        }
        params.append(UInt8(ascii: "}"))
        let timeout = settings.withLockedValue { $0.callTimeout }
        let started = DispatchTime.now().uptimeNanoseconds
        var outcome = ActivityOutcome.failed
        var metricOutcome = CallOutcome.error
        defer {
            if let instance { Task { await manager.releaseInstance(server: instance.server, workspace: instance.workspace) } }
            let elapsed = DispatchTime.now().uptimeNanoseconds - started
            manager.metrics.toolCall(server: ct.server, tool: ct.tool.name, configured: true, inCatalogue: true,
                                     outcome: metricOutcome, nanoseconds: elapsed)
            let ms = Double(elapsed) / 1e6
            gate.recordCall(server: ct.server, tool: ct.tool.name, durationMs: ms, outcome: outcome,
                            requestID: String(decoding: id, as: UTF8.self), arguments: rawArgs, caller: identity.label)
        }
        do {
            let target = server
            let reply = try await asCaller(of: callerKey) {
                try await target.request(method: "tools/call", params: params, timeout: timeout, progress: progress?.forward)
            }
            if let e = reply.rpcError {
                outcome = .error
                return JSONRPC.error(id: id, e)
            }
            guard let r = reply.envelope.result else { outcome = .error; throw ProxyError(.upstreamFailed, "upstream server \"\(ct.server)\" sent a response without a result") }
            outcome = .ok
            return reply.bytes.withUnsafeBufferPointer { p in
                metricOutcome = Self.isErrorResult(p, r) ? .error : .ok
                return JSONRPC.result(id: id, rawResult: UnsafeBufferPointer(rebasing: p[r]))
            }
        } catch {
            if (error as? ProxyError)?.code == .timeout { outcome = .timeout; metricOutcome = .timeout }
            if error is CancellationError { outcome = .cancelled }
            throw error
        }
    }

    /// The first tool of a workspace instance that differs from the definition the gate judged
    /// (`catalog`: its visible tools; held ones stay held), or nil.
    static func instanceDrift(_ tools: [ToolDefinition], server: String, catalog: Catalog) -> String? {
        var definition: [String: ToolDefinition] = [:]
        var held: Set<String> = []
        for t in tools {
            if let ct = catalog.tools["\(server):\(t.name)"] { definition[t.name] = ct.tool }
            else if catalog.refusals["\(server):\(t.name)"] != nil { held.insert(t.name) }
        }
        return InstancePolicy.drift(instance: tools, definition: definition, held: held)
    }

    /// Why a call to `qualified` is not forwarded: the same answer as for a tool that does not
    /// exist for anything the caller may not see, else the reason it may see (held, quarantined,
    /// awaiting approval, not ready).
    func refusal(qualified: String, catalog: Catalog, identity: Identity, direct: Bool) async -> Error {
        func unknown() -> Error {
            let message = unknownToolMessage(qualified, identity: identity, builtins: false)
            return direct ? ProxyError(.invalidArgument, message) : ToolFailure(message: message)
        }
        guard let colon = qualified.firstIndex(of: ":") else {
            if direct { return unknown() }
            return ToolFailure(message: "tool name \"\(qualified)\" must be server:tool; \(unknownToolMessage(qualified, identity: identity, builtins: false).components(separatedBy: "; ").last ?? "")")
        }
        let server = String(qualified[..<colon])
        let toolName = String(qualified[qualified.index(after: colon)...])
        guard identity.mayUse(server: server) else { return unknown() }
        if !catalog.serverNames.contains(server), manager.pendingServers.contains(where: { $0.name == server }) {
            return ToolFailure(message: "server \"\(server)\" was added over MCP and awaits a person's approval; nothing runs until then (`mcpproxy upstream approve \(server)` or POST /api/v1/servers/\(server)/approve)")
        }
        guard catalog.serverNames.contains(server) else { return unknown() }
        if let why = catalog.held[server] { return ToolFailure(message: why) }
        if let why = catalog.refusals["\(server):*"] { return ToolFailure(message: why) }
        if let why = catalog.refusals[qualified],
           let def = catalog.servers[server]?.tools.first(where: { $0.name == toolName }),
           identity.allows(server: server, tool: def) {
            return ToolFailure(message: why)
        }
        if let s = catalog.servers[server], s.state == .disabled {
            return ToolFailure(message: "upstream server \"\(server)\" is disabled; a person can enable it (`mcpproxy upstream enable \(server)` or POST /api/v1/servers/\(server)/enable)")
        }
        if let s = catalog.servers[server], s.state != .ready {
            let snap = await s.snapshot()
            return ToolFailure(message: "upstream server \"\(server)\" is \(snap.state.rawValue)\(snap.lastError.map { ": \($0)" } ?? ""); try again shortly")
        }
        return unknown()
    }

    /// Counts a refused call: its server's label only for a configured server, its tool's only
    /// for a catalogue tool.
    func countRefused(_ qualified: String, catalog: Catalog) {
        guard let colon = qualified.firstIndex(of: ":") else {
            manager.metrics.toolCall(server: "", tool: "", configured: false, inCatalogue: false, outcome: .refused)
            return
        }
        let server = String(qualified[..<colon])
        let ct = catalog.tools[qualified]
        manager.metrics.toolCall(server: server, tool: ct?.tool.name ?? "", configured: catalog.serverNames.contains(server),
                                 inCatalogue: ct != nil, outcome: .refused)
    }

    /// True when a tools/call result (`range` of `p`) says `"isError": true`.
    static func isErrorResult(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        guard let m = JSONSpan.members(p, range), let v = m.first(where: { $0.key == "isError" })?.value else { return false }
        return v.count == 4 && p[v.lowerBound] == UInt8(ascii: "t")
    }

    // MARK: upstream_servers

    func upstreamServers(_ body: [UInt8], _ range: Range<Int>?, identity: Identity) async throws -> String {
        let args = try arguments(body, range)
        guard let op = args["operation"]?.stringValue else {
            throw ToolFailure(message: "upstream_servers needs \"operation\": list, add, remove, enable, disable or restart")
        }
        let name = args["name"]?.stringValue
        func needName() throws -> String {
            guard let name, !name.isEmpty else { throw ToolFailure(message: "operation \(op) needs \"name\"") }
            guard identity.mayUse(server: name) else { throw ToolFailure(message: "no server named \"\(name)\"") }
            return name
        }
        do {
            switch op {
            case "list":
                var list: [JSONValue] = []
                let config = await manager.currentConfig
                for s in await manager.allServers() where identity.mayUse(server: s.name) {
                    list.append(RESTAPI.serverJSON(await s.snapshot(), config: config.server(named: s.name)))
                }
                for p in manager.pendingServers where identity.mayUse(server: p.name) { list.append(RESTAPI.pendingJSON(p)) }
                return Self.textResult(["servers": .array(list)])
            case "add":
                let n = try needName()
                var s = ServerConfig(name: n)
                s.command = args["command"]?.stringValue
                s.args = args["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
                s.env = args["env"]?.objectValue?.compactMapValues(\.stringValue) ?? [:]
                s.url = args["url"]?.stringValue
                s.workingDir = args["working_dir"]?.stringValue
                if let p = args["protocol"]?.stringValue {
                    guard let proto = UpstreamProtocol(rawValue: p == "streamable-http" ? "http" : p) else {
                        throw ToolFailure(message: "unknown protocol \"\(p)\" (expected stdio, http or sse)")
                    }
                    s.protocolKind = proto
                }
                guard (s.command != nil) != (s.url != nil) else { throw ToolFailure(message: "add needs exactly one of \"command\" or \"url\"") }
                try await manager.addPending(s, addedBy: identity.label)
                return Self.textResult(["ok": true, "server": .string(n), "state": "awaiting_approval",
                                        "message": .string("added; nothing runs until a person approves it (`mcpproxy upstream approve \(n)` or POST /api/v1/servers/\(n)/approve); it then starts quarantined and its tools need a second approval")])
            case "remove":
                let n = try needName(); try await manager.remove(n)
                return Self.textResult(["ok": true, "server": .string(n), "message": "removed"])
            case "enable", "disable":
                let n = try needName(); try await manager.setEnabled(n, op == "enable")
                return Self.textResult(["ok": true, "server": .string(n), "message": .string("\(op)d")])
            case "restart":
                let n = try needName(); try await manager.restart(n)
                return Self.textResult(["ok": true, "server": .string(n), "message": "restarting"])
            default:
                throw ToolFailure(message: "unknown operation \"\(op)\" (expected list, add, remove, enable, disable or restart)")
            }
        } catch let e as ProxyError where [.invalidArgument, .notFound, .conflict, .refused].contains(e.code) {
            throw ToolFailure(message: e.description)
        }
    }
}

import Foundation
import Logging
import NIOConcurrencyHelpers
import ProxyCore
import Upstream

/// Per-client MCP session state.
public final class MCPSession: @unchecked Sendable {
    public let id: String
    private let lock = NIOLock()
    private var _protocolVersion: String = MCPHandler.supportedVersions.last!
    private var _clientName: String = ""
    public var lastSeen: Date = Date()

    private var streams: [UUID: AsyncStream<[UInt8]>.Continuation] = [:]

    public init(id: String) { self.id = id }

    /// Opens a server-to-client event stream (GET /mcp).
    func openStream() -> (id: UUID, events: AsyncStream<[UInt8]>) {
        let id = UUID()
        let (stream, cont) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: .bufferingNewest(64))
        lock.withLock { streams[id] = cont }
        return (id, stream)
    }
    func closeStream(_ id: UUID) { lock.withLock { streams.removeValue(forKey: id) }?.finish() }
    func closeStreams() {
        let all = lock.withLock { () -> [AsyncStream<[UInt8]>.Continuation] in defer { streams.removeAll() }; return Array(streams.values) }
        all.forEach { $0.finish() }
    }
    /// Sends one JSON-RPC message as an SSE event on every open stream of this session.
    func send(_ message: [UInt8]) {
        let event = Array("event: message\ndata: ".utf8) + message + Array("\n\n".utf8)
        for c in lock.withLock({ Array(streams.values) }) { c.yield(event) }
    }
    func sendRaw(_ bytes: [UInt8], to id: UUID) { _ = lock.withLock { streams[id] }?.yield(bytes) }
    public var protocolVersion: String {
        get { lock.withLock { _protocolVersion } }
        set { lock.withLock { _protocolVersion = newValue } }
    }
    public var clientName: String {
        get { lock.withLock { _clientName } }
        set { lock.withLock { _clientName = newValue } }
    }
}

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
    }

    public func updateConfig(_ c: ProxyConfig) { settings.withLockedValue { $0 = c } }

    /// The outcome of handling one HTTP body or stdio line.
    public enum Outcome: Sendable {
        case response([UInt8])
        /// Only notifications/responses were received: nothing to send (HTTP 202).
        case accepted
    }

    /// Handles a message or a batch.
    public func handle(_ body: [UInt8], session: MCPSession?) async -> Outcome {
        let first = body.first { !JSONSpan.isSpace($0) }
        if first == UInt8(ascii: "[") {
            let parts: [Range<Int>]? = body.withUnsafeBufferPointer { JSONSpan.elements($0, 0..<$0.count) }
            guard let parts else { return .response(JSONRPC.error(id: nil, code: -32700, message: "parse error: the body is not valid JSON")) }
            if parts.isEmpty { return .response(JSONRPC.error(id: nil, code: -32600, message: "invalid request: empty batch")) }
            var responses: [[UInt8]] = []
            for r in parts {
                if case .response(let bytes) = await handleOne(Array(body[r]), session: session) { responses.append(bytes) }
            }
            if responses.isEmpty { return .accepted }
            var out: [UInt8] = [UInt8(ascii: "[")]
            for (i, r) in responses.enumerated() { if i > 0 { out.append(UInt8(ascii: ",")) }; out += r }
            out.append(UInt8(ascii: "]"))
            return .response(out)
        }
        return await handleOne(body, session: session)
    }

    func handleOne(_ body: [UInt8], session: MCPSession?) async -> Outcome {
        let env: JSONRPCEnvelope
        do {
            env = try JSONRPCEnvelope.parse(body)
        } catch {
            switch error {
            case .parse:
                return .response(JSONRPC.error(id: nil, code: -32700, message: "parse error: the body is not valid JSON"))
            case .invalid(let why):
                return .response(JSONRPC.error(id: Self.bestEffortID(body), code: -32600, message: "invalid request: \(why)"))
            }
        }
        guard env.kind == .request, let method = env.method, let id = env.id else { return .accepted }
        do {
            switch method {
            case "initialize": return .response(initialize(id: id, body: body, env: env, session: session))
            case "ping": return .response(JSONRPC.result(id: id, json: "{}"))
            case "tools/list": return .response(JSONRPC.result(id: id, json: toolsList()))
            case "tools/call": return .response(try await toolsCall(id: id, body: body, env: env))
            case "resources/list": return .response(JSONRPC.result(id: id, json: #"{"resources":[]}"#))
            case "resources/templates/list": return .response(JSONRPC.result(id: id, json: #"{"resourceTemplates":[]}"#))
            case "prompts/list": return .response(JSONRPC.result(id: id, json: #"{"prompts":[]}"#))
            default:
                return .response(JSONRPC.error(id: id, code: -32601, message: "method not found: \(method)"))
            }
        } catch let e as ProxyError {
            return .response(JSONRPC.error(id: id, e))
        } catch {
            log.error("internal error handling \(method): \(error)")
            return .response(JSONRPC.error(id: id, code: -32603, message: "internal error"))
        }
    }

    static func bestEffortID(_ body: [UInt8]) -> [UInt8]? {
        body.withUnsafeBufferPointer { p in
            guard let m = JSONSpan.members(p, 0..<p.count), let r = m.first(where: { $0.key == "id" })?.value else { return nil }
            let c = p[r.lowerBound]
            guard c == UInt8(ascii: "\"") || c == UInt8(ascii: "-") || (c >= 0x30 && c <= 0x39) else { return nil }
            return Array(p[r])
        }
    }

    // MARK: initialize

    func initialize(id: [UInt8], body: [UInt8], env: JSONRPCEnvelope, session: MCPSession?) -> [UInt8] {
        let params = env.params.flatMap { try? JSONValue.parse(Data(body[$0])) }
        let requested = params?["protocolVersion"]?.stringValue ?? ""
        let version = Self.supportedVersions.contains(requested) ? requested : Self.supportedVersions.last!
        session?.protocolVersion = version
        session?.clientName = params?["clientInfo"]?["name"]?.stringValue ?? ""
        let result: JSONValue = [
            "protocolVersion": .string(version),
            "capabilities": ["tools": ["listChanged": true]],
            "serverInfo": ["name": "mcpproxy", "version": .string(ProxyVersion.current)],
            "instructions": "mcpproxy federates many MCP servers. Use retrieve_tools to search their tools, then call_tool (or call_tool_read/_write/_destructive) with the name it returns (server:tool).",
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

    func toolsList() -> String {
        var tools = Self.builtinTools
        if settings.withLockedValue({ $0.routingMode }) == .direct {
            let catalog = manager.catalog
            for key in catalog.tools.keys.sorted() {
                let ct = catalog.tools[key]!
                guard case .object(var o) = ct.tool.raw else { continue }
                o["name"] = .string(ct.directName)
                tools.append(.object(o))
            }
        }
        return JSONValue.object(["tools": .array(tools)]).serialized()
    }

    // MARK: tools/call

    func toolsCall(id: [UInt8], body: [UInt8], env: JSONRPCEnvelope) async throws -> [UInt8] {
        guard let pr = env.params else { throw ProxyError(.invalidArgument, "tools/call needs params with a \"name\"") }
        let (name, argsRange): (String?, Range<Int>?) = body.withUnsafeBufferPointer { p in
            guard let m = JSONSpan.members(p, pr) else { return (nil, nil) }
            let n = m.first { $0.key == "name" }.flatMap { JSONSpan.decodeString(p, $0.value) }
            return (n, m.first { $0.key == "arguments" }?.value)
        }
        guard let name else { throw ProxyError(.invalidArgument, "tools/call needs a string \"name\"") }
        switch name {
        case "retrieve_tools": return JSONRPC.result(id: id, json: try await retrieveTools(body, argsRange))
        case "call_tool": return try await callTool(id: id, body, argsRange, intent: .any)
        case "call_tool_read": return try await callTool(id: id, body, argsRange, intent: .read)
        case "call_tool_write": return try await callTool(id: id, body, argsRange, intent: .write)
        case "call_tool_destructive": return try await callTool(id: id, body, argsRange, intent: .destructive)
        case "upstream_servers": return JSONRPC.result(id: id, json: try await upstreamServers(body, argsRange))
        default:
            if settings.withLockedValue({ $0.routingMode }) == .direct, let sep = name.range(of: "__") {
                let qualified = "\(name[..<sep.lowerBound]):\(name[sep.upperBound...])"
                let raw = argsRange.map { Array(body[$0]) } ?? Array("{}".utf8)
                return try await route(id: id, qualified: qualified, rawArgs: raw, intent: .any)
            }
            throw unknownTool(name, builtins: true)
        }
    }

    func arguments(_ body: [UInt8], _ range: Range<Int>?) throws -> JSONValue {
        guard let range else { return .object([:]) }
        guard let v = try? JSONValue.parse(Data(body[range])), case .object = v else {
            throw ProxyError(.invalidArgument, "\"arguments\" must be an object")
        }
        return v
    }

    func retrieveTools(_ body: [UInt8], _ range: Range<Int>?) async throws -> String {
        let args = try arguments(body, range)
        guard let query = args["query"]?.stringValue, !query.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ProxyError(.invalidArgument, "retrieve_tools needs a non-empty \"query\"")
        }
        let limit = min(50, max(1, args["limit"]?.intValue ?? 10))
        if Date().timeIntervalSince(startedAt) < 120 { await manager.waitForStartup(timeout: 15) }
        let hits = manager.catalog.index.search(query, limit: limit)
        let tools: [JSONValue] = hits.map { h in
            [
                "name": .string(h.tool.qualifiedName), "server": .string(h.tool.server),
                "description": .string(h.tool.tool.description), "inputSchema": h.tool.tool.inputSchema,
                "annotations": h.tool.tool.annotations ?? .object([:]),
                "score": .number((h.score * 1000).rounded() / 1000),
            ]
        }
        let structured: JSONValue = ["tools": .array(tools), "query": .string(query)]
        return Self.textResult(structured)
    }

    static func textResult(_ v: JSONValue, isError: Bool = false) -> String {
        let text = v.serialized()
        return JSONValue.object([
            "content": [["type": "text", "text": .string(text)]],
            "structuredContent": v,
            "isError": .bool(isError),
        ]).serialized()
    }

    func callTool(id: [UInt8], _ body: [UInt8], _ range: Range<Int>?, intent: CallIntent) async throws -> [UInt8] {
        guard let range else { throw ProxyError(.invalidArgument, "call_tool needs arguments {name, args}") }
        var target: String?
        var rawArgs: [UInt8]?
        var argsJSON: String?
        var badArgs = false
        body.withUnsafeBufferPointer { p in
            guard let m = JSONSpan.members(p, range) else { badArgs = true; return }
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
        if badArgs { throw ProxyError(.invalidArgument, "\"args\" must be an object") }
        guard let target, !target.isEmpty else { throw ProxyError(.invalidArgument, "call_tool needs \"name\" as server:tool") }
        if rawArgs == nil, let argsJSON, !argsJSON.trimmingCharacters(in: .whitespaces).isEmpty {
            let bytes = Array(argsJSON.utf8)
            let ok = bytes.withUnsafeBufferPointer { p in JSONSpan.members(p, 0..<p.count) != nil }
            guard ok else { throw ProxyError(.invalidArgument, "\"args_json\" must hold a JSON object") }
            rawArgs = bytes
        }
        return try await route(id: id, qualified: target, rawArgs: rawArgs ?? Array("{}".utf8), intent: intent)
    }

    func unknownTool(_ name: String, builtins: Bool) -> ProxyError {
        let catalog = manager.catalog
        var names = Array(catalog.tools.keys)
        if builtins { names += Self.builtinTools.compactMap { $0["name"]?.stringValue } }
        let close = ToolIndex.closest(to: name, among: names)
        let hint = close.isEmpty ? "no tools are available" : "closest: \(close.joined(separator: ", "))"
        return ProxyError(.invalidArgument, "unknown tool \"\(name)\"; \(hint)")
    }

    /// Routes a call to `server:tool`, forwarding the upstream's result (or error) byte-exact.
    func route(id: [UInt8], qualified: String, rawArgs: [UInt8], intent: CallIntent) async throws -> [UInt8] {
        var catalog = manager.catalog
        if catalog.tools[qualified] == nil, Date().timeIntervalSince(startedAt) < 120 {
            // Right after start, servers may still be coming up: wait for them once.
            await manager.waitForStartup(timeout: 15)
            catalog = manager.catalog
        }
        guard let ct = catalog.lookup(qualified) else {
            if let why = catalog.refusals[qualified] { throw ProxyError(.refused, why) }
            if let colon = qualified.firstIndex(of: ":") {
                let server = String(qualified[..<colon])
                if let why = catalog.refusals["\(server):*"] { throw ProxyError(.refused, why) }
                if catalog.serverNames.contains(server), let s = await manager.server(named: server), s.state != .ready {
                    let snap = await s.snapshot()
                    throw ProxyError(.unavailable, "upstream server \"\(server)\" is \(snap.state.rawValue)\(snap.lastError.map { ": \($0)" } ?? "")")
                }
            } else {
                throw ProxyError(.invalidArgument, "tool name \"\(qualified)\" must be server:tool; \(unknownTool(qualified, builtins: false).message.components(separatedBy: "; ").last ?? "")")
            }
            throw unknownTool(qualified, builtins: false)
        }
        if let conflict = intent.conflict(with: ct.tool) {
            throw ProxyError(.refused, "call_tool_\(intent.rawValue) refused for \"\(qualified)\": \(conflict)")
        }
        guard let server = catalog.servers[ct.server] else { throw unknownTool(qualified, builtins: false) }
        var params = Array(#"{"name":"#.utf8)
        params += Array(JSONValue.quoted(ct.tool.name).utf8)
        params += Array(#","arguments":"#.utf8)
        params += rawArgs
        params.append(UInt8(ascii: "}"))
        let timeout = settings.withLockedValue { $0.callTimeout }
        let started = DispatchTime.now().uptimeNanoseconds
        var outcome = "failed"
        defer {
            let ms = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
            gate.recordCall(server: ct.server, tool: ct.tool.name, durationMs: ms, outcome: outcome,
                            requestID: String(decoding: id, as: UTF8.self), arguments: rawArgs)
        }
        do {
            let reply = try await server.request(method: "tools/call", params: params, timeout: timeout)
            if let e = reply.errorBytes {
                outcome = "error"
                var out = Array(#"{"jsonrpc":"2.0","id":"#.utf8) + id + Array(#","error":"#.utf8)
                out += e
                out.append(UInt8(ascii: "}"))
                return out
            }
            guard let r = reply.envelope.result else { outcome = "error"; throw ProxyError(.upstreamFailed, "upstream server \"\(ct.server)\" sent a response without a result") }
            outcome = "ok"
            return reply.bytes.withUnsafeBufferPointer { p in JSONRPC.result(id: id, rawResult: UnsafeBufferPointer(rebasing: p[r])) }
        } catch {
            if (error as? ProxyError)?.code == .timeout { outcome = "timeout" }
            throw error
        }
    }

    // MARK: upstream_servers

    func upstreamServers(_ body: [UInt8], _ range: Range<Int>?) async throws -> String {
        let args = try arguments(body, range)
        guard let op = args["operation"]?.stringValue else {
            throw ProxyError(.invalidArgument, "upstream_servers needs \"operation\": list, add, remove, enable, disable or restart")
        }
        let name = args["name"]?.stringValue
        func needName() throws -> String {
            guard let name, !name.isEmpty else { throw ProxyError(.invalidArgument, "operation \(op) needs \"name\"") }
            return name
        }
        switch op {
        case "list":
            var list: [JSONValue] = []
            for s in await manager.allServers() {
                let snap = await s.snapshot()
                list.append(RESTAPI.serverJSON(snap, config: (await manager.currentConfig).server(named: snap.name)))
            }
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
                    throw ProxyError(.invalidArgument, "unknown protocol \"\(p)\"")
                }
                s.protocolKind = proto
            }
            guard (s.command != nil) != (s.url != nil) else { throw ProxyError(.invalidArgument, "add needs exactly one of \"command\" or \"url\"") }
            try await manager.add(s)
            return Self.textResult(["ok": true, "server": .string(n), "message": .string("added; it starts quarantined until approved via the REST API or `mcpproxy upstream approve \(n)`")])
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
            throw ProxyError(.invalidArgument, "unknown operation \"\(op)\" (expected list, add, remove, enable, disable or restart)")
        }
    }
}

import Foundation
import MCPSecurity
import ProxyCore
import Upstream

/// The reversible naming of federated resources and prompts (docs/commands.md, "Resources and
/// prompts"): a prompt `p` of server `s` is `s:p`; a resource URI `u` of server `s` is
/// `mcpproxy://s/` followed by `u` percent-encoded (every byte but RFC 3986 unreserved ones), so
/// the gateway can always tell which server a URI belongs to and give it back its own URI.
/// Pure, so it is unit-tested.
public enum FederatedName {
    public static let uriPrefix = "mcpproxy://"
    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    public static func wrap(server: String, uri: String) -> String {
        uriPrefix + server + "/" + (uri.addingPercentEncoding(withAllowedCharacters: unreserved) ?? uri)
    }

    /// A URI template: literal parts are encoded as `wrap` does; `{...}` expressions are kept so
    /// the client can still expand them (their values are decoded once on the way back).
    public static func wrap(server: String, template: String) -> String {
        var out = uriPrefix + server + "/"
        var literal = ""
        var i = template.startIndex
        while i < template.endIndex {
            if template[i] == "{", let close = template[i...].firstIndex(of: "}") {
                out += literal.addingPercentEncoding(withAllowedCharacters: unreserved) ?? literal
                literal = ""
                out += template[i...close]
                i = template.index(after: close)
            } else {
                literal.append(template[i])
                i = template.index(after: i)
            }
        }
        return out + (literal.addingPercentEncoding(withAllowedCharacters: unreserved) ?? literal)
    }

    /// The server and its own URI, or nil when `uri` is not a gateway URI.
    public static func unwrap(uri: String) -> (server: String, uri: String)? {
        guard uri.hasPrefix(uriPrefix) else { return nil }
        let rest = uri.dropFirst(uriPrefix.count)
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let server = String(rest[..<slash])
        guard !server.isEmpty, let original = String(rest[rest.index(after: slash)...]).removingPercentEncoding,
              !original.isEmpty else { return nil }
        return (server, original)
    }

    /// Whether some expansion of the URI template `template` (RFC 6570) can be `uri`. Literal
    /// parts must match exactly and in order; each `{...}` expression may stand for any text,
    /// empty included. Broader than RFC 6570 (a simple `{x}` cannot expand to a `/`): it decides
    /// which reads a held template refuses, so it errs towards refusing: case is ignored too (an
    /// upstream may treat `LOG://` as `log://`).
    public static func template(_ template: String, mayExpandTo uri: String) -> Bool {
        let template = template.lowercased(), uri = uri.lowercased()
        var literals: [Substring] = []
        var rest = template[...]
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            literals.append(rest[..<open])
            rest = rest[rest.index(after: close)...]
        }
        guard !literals.isEmpty else { return template == uri }
        literals.append(rest)
        // A glob with `*` between the literals: the first is a prefix, the last a suffix that
        // does not overlap it, the middle ones found leftmost in order.
        let first = literals.removeFirst(), last = literals.removeLast()
        guard uri.hasPrefix(first), uri.count >= first.count + last.count, uri.hasSuffix(last) else { return false }
        var middle = uri.dropFirst(first.count).dropLast(last.count)
        for literal in literals where !literal.isEmpty {
            guard let r = middle.range(of: literal) else { return false }
            middle = middle[r.upperBound...]
        }
        return true
    }

    /// `server:name` split at the first colon (server names cannot hold one).
    public static func split(_ qualified: String) -> (server: String, name: String)? {
        guard let colon = qualified.firstIndex(of: ":"), colon != qualified.startIndex else { return nil }
        let name = String(qualified[qualified.index(after: colon)...])
        return name.isEmpty ? nil : (String(qualified[..<colon]), name)
    }
}

/// Resources, resource templates, prompts, completion and logging levels of the upstreams,
/// federated for one caller: only servers it may use, that are ready and approved (nothing
/// from a quarantined server), and that declared the capability.
extension MCPHandler {
    /// Servers whose resources and prompts `identity` may see, with their declared capabilities.
    func federated(for identity: Identity, capability: String) async -> [(name: String, server: UpstreamServer)] {
        let catalog = manager.catalog
        let config = settings.withLockedValue { $0 }
        var out: [(String, UpstreamServer)] = []
        for (name, shared) in catalog.servers.sorted(by: { $0.key < $1.key })
        where identity.mayUse(server: name) && catalog.refusals["\(name):*"] == nil && catalog.evaluated.contains(name) {
            var server = shared
            // A workspace-scoped server answers through the caller's workspace's instance, when
            // one runs (listing does not start one; a tool call does).
            if config.server(named: name)?.instance == .workspace {
                guard let ws = identity.workspace,
                      let own = await manager.instances.existing(InstanceKey(server: name, workspace: ws)) else { continue }
                server = own
            }
            let snap = await server.snapshot()
            guard snap.state == .ready, snap.capabilities?[capability] != nil else { continue }
            out.append((name, server))
        }
        return out
    }

    /// The one server a qualified name or URI names, if `identity` may use it (else the same
    /// error as for a name that does not exist).
    func federatedServer(_ name: String, for identity: Identity, capability: String, what: String) async throws -> UpstreamServer {
        guard let s = await federated(for: identity, capability: capability).first(where: { $0.name == name }) else {
            throw ProxyError(.invalidArgument, "unknown \(what)")
        }
        return s.server
    }

    func params(_ body: [UInt8], _ env: JSONRPCEnvelope) -> [String: JSONValue] {
        env.params.flatMap { try? JSONValue.parse(Data(body[$0])) }?.objectValue ?? [:]
    }

    /// Every page of a list method from one upstream (bounded), as the items under `key`.
    func listAll(_ server: UpstreamServer, method: String, key: String) async -> [JSONValue] {
        var items: [JSONValue] = []
        var cursor: String? = nil
        let timeout = settings.withLockedValue { $0.callTimeout }
        for _ in 0..<50 {
            let params: JSONValue = cursor.map { ["cursor": .string($0)] } ?? [:]
            guard let reply = try? await server.request(method: method, params: Array(params.serialized().utf8), timeout: min(timeout, 30)),
                  let result = reply.resultValue() else { break }
            items += result[key]?.arrayValue ?? []
            guard let next = result["nextCursor"]?.stringValue, !next.isEmpty, next != cursor else { break }
            cursor = next
        }
        return items
    }

    /// A prompt or resource as the scanner sees it: its name, title and description, and (prompts)
    /// its arguments' names and descriptions as a schema.
    static func screenable(_ item: JSONValue, name: String) -> ToolDefinition {
        var props: [String: JSONValue] = [:]
        for a in item["arguments"]?.arrayValue ?? [] {
            if let n = a["name"]?.stringValue { props[n] = ["type": "string", "description": a["description"] ?? ""] }
        }
        // A resource's or template's own `name` is text the model reads too (for prompts it is
        // the key itself).
        let label = item["name"]?.stringValue.flatMap { $0 == name ? nil : $0 }
        let text = [label, item["title"]?.stringValue, item["description"]?.stringValue].compactMap { $0 }.joined(separator: "\n")
        return ToolDefinition(name: name, description: text, inputSchema: ["type": "object", "properties": .object(props)],
                              raw: item)
    }

    /// The items of one server's listing that the gate holds (scanner findings; pins for prompts
    /// and templates), with why, by the key that names them (`name` for prompts, `uri` or
    /// `uriTemplate` for resources).
    func held(_ items: [JSONValue], server: String, kind: ItemKind) async -> [String: String] {
        let defs = items.compactMap { i in i[Self.nameKey(kind)]?.stringValue.map { Self.screenable(i, name: $0) } }
        return await gate.hold(server: server, kind: kind, items: defs)
    }

    static func nameKey(_ kind: ItemKind) -> String {
        switch kind {
        case .prompt: return "name"
        case .resourceTemplate: return "uriTemplate"
        case .resource: return "uri"
        }
    }

    func resourcesList(_ identity: Identity, templates: Bool) async -> String {
        let key = templates ? "resourceTemplates" : "resources"
        var all: [JSONValue] = []
        for (name, server) in await federated(for: identity, capability: "resources") {
            let items = await listAll(server, method: templates ? "resources/templates/list" : "resources/list", key: key)
            let held = await held(items, server: name, kind: templates ? .resourceTemplate : .resource)
            for item in items {
                guard var o = item.objectValue else { continue }
                if let id = (templates ? o["uriTemplate"] : o["uri"])?.stringValue, held[id] != nil { continue }
                if templates, let t = o["uriTemplate"]?.stringValue {
                    o["uriTemplate"] = .string(FederatedName.wrap(server: name, template: t))
                } else if let u = o["uri"]?.stringValue {
                    o["uri"] = .string(FederatedName.wrap(server: name, uri: u))
                } else { continue }
                all.append(.object(o))
            }
        }
        return JSONValue.object([key: .array(all)]).serialized()
    }

    func promptsList(_ identity: Identity) async -> String {
        var all: [JSONValue] = []
        for (name, server) in await federated(for: identity, capability: "prompts") {
            let items = await listAll(server, method: "prompts/list", key: "prompts")
            let held = await held(items, server: name, kind: .prompt)
            for item in items {
                guard var o = item.objectValue, let n = o["name"]?.stringValue, held[n] == nil else { continue }
                o["name"] = .string("\(name):\(n)")
                all.append(.object(o))
            }
        }
        return JSONValue.object(["prompts": .array(all)]).serialized()
    }

    /// Forwards one request upstream; an upstream error is passed on byte-exact, a result is
    /// rewritten by `map`.
    func forward(id: [UInt8], _ server: UpstreamServer, method: String, params: JSONValue,
                 map: (JSONValue) -> JSONValue = { $0 }) async throws -> [UInt8] {
        let timeout = settings.withLockedValue { $0.callTimeout }
        var params = params
        let progress = Self.upstreamProgress()
        if let progress, case .object(var o) = params {
            o["_meta"] = ["progressToken": .string(progress.token)]
            params = .object(o)
        }
        let body = Array(params.serialized().utf8)
        let reply = try await asCaller(of: server.routingKey) {
            try await server.request(method: method, params: body, timeout: timeout, progress: progress?.forward)
        }
        if let e = reply.rpcError { return JSONRPC.error(id: id, e) }
        guard let result = reply.resultValue() else { throw ProxyError(.upstreamFailed, "the upstream sent a response without a result") }
        return JSONRPC.result(id: id, json: map(result).serialized())
    }

    func resourcesRead(id: [UInt8], _ p: [String: JSONValue], identity: Identity) async throws -> [UInt8] {
        guard let uri = p["uri"]?.stringValue, let (name, original) = FederatedName.unwrap(uri: uri) else {
            throw ProxyError(.invalidArgument, "unknown resource: expected a URI from resources/list (mcpproxy://SERVER/...)")
        }
        let server = try await federatedServer(name, for: identity, capability: "resources", what: "resource")
        // A URI that a held template could produce is not read, unless the server lists it as a
        // resource of its own that is not held: the held template is how a client learnt it.
        let templates = await listAll(server, method: "resources/templates/list", key: "resourceTemplates")
        if let (_, why) = await held(templates, server: name, kind: .resourceTemplate)
            .sorted(by: { $0.key < $1.key }).first(where: { FederatedName.template($0.key, mayExpandTo: original) }) {
            let listed = await listAll(server, method: "resources/list", key: "resources")
            let isListed = listed.contains { $0["uri"]?.stringValue == original }
            let heldResources = await held(listed, server: name, kind: .resource)
            if !isListed || heldResources[original] != nil {
                throw ProxyError(.refused, "resource \"\(uri)\" matches a held resource template: \(why)")
            }
        }
        var params = p
        params["uri"] = .string(original)
        return try await forward(id: id, server, method: "resources/read", params: .object(params)) { result in
            guard var o = result.objectValue, let contents = o["contents"]?.arrayValue else { return result }
            o["contents"] = .array(contents.map { c in
                guard var co = c.objectValue, let u = co["uri"]?.stringValue else { return c }
                co["uri"] = .string(FederatedName.wrap(server: name, uri: u))
                return .object(co)
            })
            return .object(o)
        }
    }

    func promptsGet(id: [UInt8], _ p: [String: JSONValue], identity: Identity) async throws -> [UInt8] {
        guard let q = p["name"]?.stringValue, let (name, prompt) = FederatedName.split(q) else {
            throw ProxyError(.invalidArgument, "unknown prompt: expected server:prompt from prompts/list")
        }
        let server = try await federatedServer(name, for: identity, capability: "prompts", what: "prompt \"\(q)\"")
        // A held prompt cannot be fetched by name either; judged on a fresh listing, so a prompt
        // changed since the last prompts/list is caught here.
        let listed = await listAll(server, method: "prompts/list", key: "prompts")
        if let why = await held(listed, server: name, kind: .prompt)[prompt] {
            throw ProxyError(.refused, why)
        }
        var params = p
        params["name"] = .string(prompt)
        return try await forward(id: id, server, method: "prompts/get", params: .object(params))
    }

    func complete(id: [UInt8], _ p: [String: JSONValue], identity: Identity) async throws -> [UInt8] {
        guard var ref = p["ref"]?.objectValue else { throw ProxyError(.invalidArgument, "completion/complete needs \"ref\"") }
        let server: UpstreamServer
        switch ref["type"]?.stringValue {
        case "ref/prompt":
            guard let q = ref["name"]?.stringValue, let (name, prompt) = FederatedName.split(q) else {
                throw ProxyError(.invalidArgument, "unknown prompt")
            }
            server = try await federatedServer(name, for: identity, capability: "completions", what: "prompt \"\(q)\"")
            ref["name"] = .string(prompt)
        case "ref/resource":
            guard let u = ref["uri"]?.stringValue, let (name, original) = FederatedName.unwrap(uri: u) else {
                throw ProxyError(.invalidArgument, "unknown resource")
            }
            server = try await federatedServer(name, for: identity, capability: "completions", what: "resource")
            ref["uri"] = .string(original)
        default:
            throw ProxyError(.invalidArgument, "ref.type must be ref/prompt or ref/resource")
        }
        var params = p
        params["ref"] = .object(ref)
        return try await forward(id: id, server, method: "completion/complete", params: .object(params))
    }

    /// `logging/setLevel` goes to every server the caller may use that logs. Upstream log
    /// messages are not forwarded yet (docs/commands.md).
    func setLevel(id: [UInt8], _ p: [String: JSONValue], identity: Identity) async throws -> [UInt8] {
        guard p["level"]?.stringValue != nil else { throw ProxyError(.invalidArgument, "logging/setLevel needs \"level\"") }
        let timeout = settings.withLockedValue { $0.callTimeout }
        for (_, server) in await federated(for: identity, capability: "logging") {
            _ = try? await server.request(method: "logging/setLevel", params: Array(JSONValue.object(p).serialized().utf8), timeout: min(timeout, 10))
        }
        return JSONRPC.result(id: id, json: "{}")
    }

    /// An upstream's notification as the clients see it: a log message names its server in
    /// `logger` (`server` or `server:logger`); list changes pass as they are (the federated list
    /// changed). Nil for anything else.
    static func clientNotification(server: String, method: String, _ message: RawMessage) -> [UInt8]? {
        switch method {
        case "notifications/message":
            guard let raw = message.paramsBytes, case .object(var params)? = try? JSONValue.parse(Data(raw)) else { return nil }
            params["logger"] = .string(params["logger"]?.stringValue.map { "\(server):\($0)" } ?? server)
            return JSONRPC.notification(method: method, params: .object(params))
        case "notifications/resources/list_changed", "notifications/prompts/list_changed":
            return JSONRPC.notification(method: method)
        default:
            return nil
        }
    }

    // MARK: resource subscriptions

    /// `resources/subscribe` / `unsubscribe` of a federated URI. The upstream is subscribed once
    /// per URI, whatever the number of sessions; the last session to leave unsubscribes it.
    func subscription(id: [UInt8], _ p: [String: JSONValue], identity: Identity, session: MCPSession?,
                      subscribe: Bool) async throws -> [UInt8] {
        guard let session else { throw ProxyError(.invalidRequest, "resource subscriptions need a session (initialize first)") }
        guard let uri = p["uri"]?.stringValue, let (name, original) = FederatedName.unwrap(uri: uri) else {
            throw ProxyError(.invalidArgument, "unknown resource: expected a URI from resources/list (mcpproxy://SERVER/...)")
        }
        let server = try await federatedServer(name, for: identity, capability: "resources", what: "resource")
        guard (await server.snapshot()).capabilities?["resources"]?["subscribe"]?.boolValue == true else {
            throw ProxyError(.invalidArgument, "the server of this resource does not support subscriptions")
        }
        let key = SubscriptionKey(server: name, uri: original)
        let upstreamCall: Bool = subscriptions.withLockedValue { s in
            if subscribe {
                let first = s[key]?.isEmpty ?? true
                s[key, default: [:]][session.id] = session
                return first
            }
            guard s[key]?.removeValue(forKey: session.id) != nil else { return false }
            if s[key]?.isEmpty == true { s.removeValue(forKey: key); return true }
            return false
        }
        if upstreamCall {
            let timeout = settings.withLockedValue { $0.callTimeout }
            let reply = try? await server.request(method: subscribe ? "resources/subscribe" : "resources/unsubscribe",
                                                  params: Array(JSONValue.object(["uri": .string(original)]).serialized().utf8),
                                                  timeout: min(timeout, 30))
            if subscribe, reply == nil || reply?.errorBytes != nil {
                subscriptions.withLockedValue { s in
                    s[key]?.removeValue(forKey: session.id)
                    if s[key]?.isEmpty == true { s.removeValue(forKey: key) }
                }
                let err = reply?.rpcError
                throw ProxyError(.upstreamFailed, "the upstream refused the subscription: \(err.map { "\($0)" } ?? "no answer")", detail: nil, cause: err)
            }
        }
        return JSONRPC.result(id: id, json: "{}")
    }

    /// An upstream's `notifications/resources/updated`: to the sessions subscribed to that URI
    /// (still open and still allowed to use the server), with the URI in its federated form.
    func resourceUpdated(server: String, _ message: RawMessage) {
        guard let raw = message.paramsBytes, case .object(var params)? = try? JSONValue.parse(Data(raw)),
              let uri = params["uri"]?.stringValue else { return }
        let key = SubscriptionKey(server: server, uri: uri)
        let sessions = subscriptions.withLockedValue { s -> [MCPSession] in
            guard var subs = s[key] else { return [] }
            subs = subs.filter { !$0.value.isClosed }  // sessions that ended are dropped here
            s[key] = subs.isEmpty ? nil : subs
            return Array(subs.values)
        }
        params["uri"] = .string(FederatedName.wrap(server: server, uri: uri))
        let note = JSONRPC.notification(method: "notifications/resources/updated", params: .object(params))
        for s in sessions where s.identity.mayUse(server: server) { s.send(note) }
    }
}

struct SubscriptionKey: Hashable {
    var server: String
    var uri: String
}

import Foundation
import NIOConcurrencyHelpers
import ProxyCore
import Upstream

/// One interactive request of a sessionless 2026-07-28 client (SEP-2322, multi round-trip):
/// `tools/call`, `prompts/get` or `resources/read` whose upstream asks the client something
/// (`sampling/createMessage`, `elicitation/create`, `roots/list`) while it runs.
///
/// Such a client cannot be sent a request. The gateway answers its request with an
/// `input_required` result that carries the upstream's request and an opaque `requestState`;
/// the upstream call keeps running, its question pending here. The client fulfils the request
/// and retries the original one with `inputResponses` and the `requestState`; the answers go
/// back to the upstream, and the retry gets the call's result, or the next question.
///
/// The state is 256 random bits, bound to the identity, method and target of the first
/// request: another caller, or another call, cannot resume it.
final class Interaction: Sendable {
    enum Event: Sendable {
        /// Questions for the client: key → `{"method", "params"}` (JSON text).
        case input([(key: String, request: [UInt8])])
        /// The call ended with this response (the first request's id).
        case done(MCPHandler.Outcome)
        /// Another retry of this request is already waiting: one at a time.
        case busy
    }

    let state: String
    let identity: Identity
    let method: String
    /// The tool or prompt name (with its arguments, canonical JSON), or the resource URI, of
    /// the first request: a retry must repeat them.
    let target: String?
    /// The client's capabilities from the request envelope.
    let capabilities: JSONValue?

    private struct State {
        var asks: [String: CheckedContinuation<[UInt8], Error>] = [:]
        /// Each pending question, to ask again when a retry does not answer it (its answer may
        /// have been lost on the way).
        var questions: [String: [UInt8]] = [:]
        var undelivered: [(key: String, request: [UInt8])] = []
        var outcome: MCPHandler.Outcome?
        var waiter: CheckedContinuation<Event, Never>?
        var nextKey = 0
        var task: Task<Void, Never>?
    }
    private let s = NIOLockedValueBox(State())

    init(identity: Identity, method: String, target: String?, capabilities: JSONValue?) {
        self.state = "mcpx-" + ConsoleSessions.randomToken()
        self.identity = identity
        self.method = method
        self.target = target
        self.capabilities = capabilities
    }

    /// Runs the call (`work`) in its own task: it outlives the HTTP request that started it.
    func start(_ work: @escaping @Sendable () async -> MCPHandler.Outcome) {
        let task = Task { [self] in finish(await work()) }
        s.withLockedValue { $0.task = task }
    }

    /// An upstream's question for the client: waits (at most `timeout` seconds) for the
    /// client's retry to bring the answer; returns the answer (a result object, JSON).
    func ask(method: String, params: ArraySlice<UInt8>?, timeout: Double) async throws -> [UInt8] {
        var request = Array(#"{"method":"#.utf8) + Array(JSONValue.quoted(method).utf8)
        if let params { request += Array(#","params":"#.utf8) + Array(params) }
        request.append(UInt8(ascii: "}"))
        let key = s.withLockedValue { st -> String in st.nextKey += 1; return "mcpx-input-\(st.nextKey)" }
        let timer = Task { [weak self] in
            try? await Task.sleep(nanoseconds: UInt64(max(0.1, timeout) * 1e9))
            guard !Task.isCancelled else { return }
            self?.settle(key, .failure(ProxyError(.timeout, "the client did not answer \(method) within \(Int(timeout)) s")))
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<[UInt8], Error>) in
                let wake = s.withLockedValue { st -> (CheckedContinuation<Event, Never>, Event)? in
                    st.asks[key] = c
                    st.questions[key] = request
                    st.undelivered.append((key, request))
                    guard let w = st.waiter else { return nil }
                    st.waiter = nil
                    defer { st.undelivered = [] }
                    return (w, .input(st.undelivered))
                }
                if let (w, e) = wake { w.resume(returning: e) }
            }
        } onCancel: {
            self.settle(key, .failure(CancellationError()))
        }
    }

    /// The client's answers from a retry (`inputResponses`: key → result object). An answer
    /// that is not a JSON object is no answer; a question still open afterwards is asked again.
    func answer(_ responses: [String: [UInt8]]) {
        for (key, bytes) in responses where bytes.first(where: { !JSONSpan.isSpace($0) }) == UInt8(ascii: "{") {
            settle(key, .success(bytes))
        }
        s.withLockedValue { st in
            let waiting = Set(st.undelivered.map(\.key))
            for (key, q) in st.questions.sorted(by: { $0.key < $1.key }) where !waiting.contains(key) {
                st.undelivered.append((key, q))
            }
        }
    }

    /// What the client is to be told next: waits for a question or the call's end. If the
    /// waiting task is cancelled (the stdio front end stopping), the call is cancelled and the
    /// wait ends with it. (A closed HTTP connection does not cancel the handler yet.)
    func next() async -> Event {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Event, Never>) in
                let now = s.withLockedValue { st -> Event? in
                    if st.waiter != nil { return .busy }
                    if !st.undelivered.isEmpty {
                        defer { st.undelivered = [] }
                        return .input(st.undelivered)
                    }
                    if let o = st.outcome { return .done(o) }
                    st.waiter = c
                    return nil
                }
                if let now { c.resume(returning: now) }
            }
        } onCancel: {
            self.cancel()
        }
    }

    /// Whether the call has ended.
    var isDone: Bool { s.withLockedValue { $0.outcome != nil } }

    /// Ends the interaction early (expired, the proxy stops): questions fail, the call is
    /// cancelled.
    func cancel() {
        let (asks, task) = s.withLockedValue { st -> ([CheckedContinuation<[UInt8], Error>], Task<Void, Never>?) in
            defer { st.asks = [:]; st.questions = [:]; st.undelivered = [] }
            return (Array(st.asks.values), st.task)
        }
        for c in asks { c.resume(throwing: ProxyError(.cancelled, "the interactive request was abandoned by its client")) }
        task?.cancel()
    }

    private func finish(_ outcome: MCPHandler.Outcome) {
        let w = s.withLockedValue { st -> CheckedContinuation<Event, Never>? in
            st.outcome = outcome
            defer { st.waiter = nil }
            return st.waiter
        }
        w?.resume(returning: .done(outcome))
    }

    private func settle(_ key: String, _ r: Result<[UInt8], Error>) {
        let c = s.withLockedValue { st -> CheckedContinuation<[UInt8], Error>? in
            st.undelivered.removeAll { $0.key == key }
            st.questions.removeValue(forKey: key)
            return st.asks.removeValue(forKey: key)
        }
        c?.resume(with: r)
    }
}

/// The interactions waiting for their client's retry, by state; bounded, and each dropped once
/// its call ended and the result was collected, or when it expires.
final class Interactions: Sendable {
    static let capacity = 4096
    /// Per credential holder: one client cannot use up the table for everyone.
    static let perIdentity = 64
    private let table = NIOLockedValueBox<[String: (interaction: Interaction, expires: Date)]>([:])

    /// Registers `i`, unless the table, or the caller's share of it, is full (the call then runs
    /// as before: without questions to the client).
    func add(_ i: Interaction, ttl: Double) -> Bool {
        table.withLockedValue { t in
            let now = Date()
            // Interactions whose client never came back (it gave up, or crashed) expire.
            if t.count >= 64 {
                for (k, v) in t where v.expires < now { v.interaction.cancel(); t.removeValue(forKey: k) }
            }
            guard t.count < Self.capacity,
                  t.values.lazy.filter({ $0.interaction.identity.key == i.identity.key }).count < Self.perIdentity else { return false }
            t[i.state] = (i, now.addingTimeInterval(ttl))
            return true
        }
    }

    /// The interaction of `state` if it belongs to this caller and this call; extends its life.
    func resume(_ state: String, identity: Identity, method: String, target: String?, ttl: Double) -> Interaction? {
        table.withLockedValue { t in
            guard let e = t[state], e.expires > Date(), e.interaction.identity == identity,
                  e.interaction.method == method, e.interaction.target == target else { return nil }
            t[state] = (e.interaction, Date().addingTimeInterval(ttl))
            return e.interaction
        }
    }

    func remove(_ state: String) { table.withLockedValue { _ = $0.removeValue(forKey: state) } }

    var count: Int { table.withLockedValue { $0.count } }
}

extension MCPHandler {
    /// The requests a server may answer with `input_required` (SEP-2322).
    static let interactiveMethods: Set<String> = ["tools/call", "prompts/get", "resources/read"]

    /// A modern interactive request: a retry (it carries `requestState`) resumes its interaction;
    /// a first request from a client that can answer questions (it declared sampling,
    /// elicitation or roots) starts one. nil: neither, handle it as any request.
    func interactive(_ body: [UInt8], _ env: JSONRPCEnvelope, id: [UInt8], method: String, session: MCPSession?,
                     identity: Identity, related: (@Sendable ([UInt8]) -> Void)?) async -> Outcome? {
        let members: [String: Range<Int>] = body.withUnsafeBufferPointer { p in
            guard let pr = env.params, let m = JSONSpan.members(p, pr) else { return [:] }
            return Dictionary(m.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        }
        func string(_ key: String) -> String? {
            members[key].flatMap { try? JSONValue.parse(Data(body[$0])) }?.stringValue
        }
        // What the retry must repeat: the name (or URI) and the arguments, canonically.
        var target = string(method == "resources/read" ? "uri" : "name")
        if let a = members["arguments"], let args = try? JSONValue.parse(Data(body[a])) {
            target = (target ?? "") + "\n" + args.serialized()
        }
        let timeout = settings.withLockedValue { $0.callTimeout }
        // A retry may come up to one call timeout after the question, and the call itself may
        // take that long.
        let ttl = max(30, 2 * timeout)
        let interaction: Interaction
        if members["requestState"] != nil {
            guard let state = string("requestState"),
                  let found = interactions.resume(state, identity: identity, method: method, target: target, ttl: ttl) else {
                return .response(JSONRPC.error(id: id, ProxyError(.invalidArgument,
                    "requestState is unknown, has expired, or belongs to another request: send the request again without it")))
            }
            var answers: [String: [UInt8]] = [:]
            body.withUnsafeBufferPointer { p in
                guard let r = members["inputResponses"], let m = JSONSpan.members(p, r) else { return }
                for (k, v) in m { answers[k] = Array(p[v]) }
            }
            found.answer(answers)
            interaction = found
        } else {
            let caps = ModernProtocol.clientCapabilities(body, env)
            guard ClientRequestKind.allCases.contains(where: { caps?[$0.rawValue] != nil }) else { return nil }
            let started = Interaction(identity: identity, method: method, target: target, capabilities: caps)
            guard interactions.add(started, ttl: ttl) else { return nil }
            let stripped = ModernProtocol.stripEnvelope(body)
            started.start {
                await MCPHandler.$interaction.withValue(started) {
                    await self.handleOne(stripped, session: session, identity: identity, related: related)
                }
            }
            interaction = started
        }
        switch await interaction.next() {
        case .done(let outcome):
            interactions.remove(interaction.state)
            switch outcome {
            case .response(let b): return .response(Self.withID(b, id))
            case .cancelled(let b): return .cancelled(Self.withID(b, id))
            case .accepted: return .accepted
            }
        case .busy:
            return .response(JSONRPC.error(id: id, ProxyError(.invalidArgument,
                "another retry of this request is still waiting for it: send one retry at a time")))
        case .input(let questions):
            var out = Array(#"{"resultType":"input_required","inputRequests":{"#.utf8)
            for (i, q) in questions.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out += Array(JSONValue.quoted(q.key).utf8) + [UInt8(ascii: ":")] + q.request
            }
            out += Array(#"},"requestState":"#.utf8) + Array(JSONValue.quoted(interaction.state).utf8) + [UInt8(ascii: "}")]
            return .response(out.withUnsafeBufferPointer { JSONRPC.result(id: id, rawResult: $0) })
        }
    }

    /// `response` answering request `id` instead (a retry collects the result of the first request).
    static func withID(_ response: [UInt8], _ id: [UInt8]) -> [UInt8] {
        guard let m = RawMessage(bytes: response) else { return response }
        if let r = m.resultBytes { return Array(r).withUnsafeBufferPointer { JSONRPC.result(id: id, rawResult: $0) } }
        if let e = m.rpcError { return JSONRPC.error(id: id, e) }
        return response
    }
}

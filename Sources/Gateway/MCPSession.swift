import Foundation
import NIOConcurrencyHelpers
import ProxyCore

/// Per-client MCP session state: who it belongs to, what it negotiated, its event streams.
public final class MCPSession: Sendable {
    public let id: String
    /// The identity that created the session (`Identity.key`): another identity presenting this
    /// session id is answered as if the session did not exist.
    public let ownerKey: String

    private struct State {
        var identity: Identity
        var protocolVersion: String = MCPHandler.supportedVersions.last!
        var clientName = ""
        var lastSeen = Date()
        /// The signature of the tools this session could see when it was last told about them.
        var toolsSignature: Int?
        var streams: [UUID: AsyncStream<[UInt8]>.Continuation] = [:]
        /// Requests in flight by their JSON-RPC id (its JSON text), for `notifications/cancelled`.
        var inflight: [String: @Sendable () -> Void] = [:]
        /// What the client declared in `initialize` (`sampling`, `elicitation`, `roots`, ...).
        var clientCapabilities: JSONValue?
        /// Requests the proxy sent the client, by id (JSON text), awaiting its response.
        var toClient: [String: CheckedContinuation<[UInt8], Error>] = [:]
        /// Ended (DELETE, eviction, shutdown): nothing more is sent to it.
        var closed = false
        /// Where `send` writes when the session has a pipe rather than event streams (stdio).
        var directSink: (@Sendable ([UInt8]) -> Void)?
    }
    private let state: NIOLockedValueBox<State>

    public init(id: String, identity: Identity) {
        self.id = id
        self.ownerKey = identity.key
        self.state = NIOLockedValueBox(State(identity: identity))
    }

    /// The identity of the latest request (same holder as the owner; its scopes may have been
    /// refreshed, e.g. a new JWT with other scopes).
    public var identity: Identity {
        get { state.withLockedValue { $0.identity } }
        set { state.withLockedValue { $0.identity = newValue } }
    }
    public var protocolVersion: String {
        get { state.withLockedValue { $0.protocolVersion } }
        set { state.withLockedValue { $0.protocolVersion = newValue } }
    }
    public var clientName: String {
        get { state.withLockedValue { $0.clientName } }
        set { state.withLockedValue { $0.clientName = newValue } }
    }
    public var lastSeen: Date {
        get { state.withLockedValue { $0.lastSeen } }
        set { state.withLockedValue { $0.lastSeen = newValue } }
    }

    /// Records `signature` as what the session now sees; true when it differs from before.
    func updateToolsSignature(_ signature: Int) -> Bool {
        state.withLockedValue { s in
            defer { s.toolsSignature = signature }
            return s.toolsSignature != nil && s.toolsSignature != signature
        }
    }

    public var clientCapabilities: JSONValue? {
        get { state.withLockedValue { $0.clientCapabilities } }
        set { state.withLockedValue { $0.clientCapabilities = newValue } }
    }

    /// Sends the client request `message` (whose id is `id`, as JSON text) through `send` and
    /// waits for the client's response message; times out after `timeout` seconds.
    func requestClient(id: String, _ message: [UInt8], send: @Sendable ([UInt8]) -> Void, timeout: Double) async throws -> [UInt8] {
        let timer = Task { [weak self] in
            try? await Task.sleep(nanoseconds: UInt64(max(0.1, timeout) * 1e9))
            self?.finishClientRequest(id, .failure(ProxyError(.timeout, "the client did not answer within \(Int(timeout)) s")))
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<[UInt8], Error>) in
                state.withLockedValue { $0.toClient[id] = c }
                send(message)
            }
        } onCancel: {
            self.finishClientRequest(id, .failure(CancellationError()))
        }
    }

    /// A response from the client: true when it answered a request the proxy sent.
    @discardableResult
    func clientResponded(id: String, _ message: [UInt8]) -> Bool {
        finishClientRequest(id, .success(message))
    }

    @discardableResult
    private func finishClientRequest(_ id: String, _ result: Result<[UInt8], Error>) -> Bool {
        guard let c = state.withLockedValue({ $0.toClient.removeValue(forKey: id) }) else { return false }
        c.resume(with: result)
        return true
    }

    /// Runs `work` as request `id` of this session: a `notifications/cancelled` for that id
    /// cancels it (and with it the upstream call, which is told in turn). The work also ends when
    /// the caller's task is cancelled. A second request reusing an id in flight is not tracked.
    func track<T: Sendable>(_ id: String, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await work() }
        let tracked = state.withLockedValue { s -> Bool in
            guard s.inflight[id] == nil else { return false }
            s.inflight[id] = { task.cancel() }
            return true
        }
        defer { if tracked { state.withLockedValue { _ = $0.inflight.removeValue(forKey: id) } } }
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    /// Cancels request `id` if it is in flight; false when it is not (already answered, unknown).
    @discardableResult
    func cancelRequest(_ id: String) -> Bool {
        guard let cancel = state.withLockedValue({ $0.inflight[id] }) else { return false }
        cancel()
        return true
    }

    /// Opens a server-to-client event stream (GET /mcp).
    func openStream() -> (id: UUID, events: AsyncStream<[UInt8]>) {
        let id = UUID()
        let (stream, cont) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: .bufferingNewest(64))
        state.withLockedValue { $0.streams[id] = cont }
        return (id, stream)
    }
    func closeStream(_ id: UUID) { state.withLockedValue { $0.streams.removeValue(forKey: id) }?.finish() }
    func closeStreams() {
        let all = state.withLockedValue { s -> [AsyncStream<[UInt8]>.Continuation] in
            defer { s.streams.removeAll(); s.closed = true }
            return Array(s.streams.values)
        }
        all.forEach { $0.finish() }
    }
    var isClosed: Bool { state.withLockedValue { $0.closed } }
    /// Messages to this session go straight to `sink` (the stdio front end's pipe).
    func sendDirectly(to sink: @escaping @Sendable ([UInt8]) -> Void) { state.withLockedValue { $0.directSink = sink } }
    /// True while at least one event stream is open.
    var hasStreams: Bool { state.withLockedValue { !$0.streams.isEmpty } }
    /// Sends one JSON-RPC message as an SSE event on every open stream of this session.
    func send(_ message: [UInt8]) {
        if let sink = state.withLockedValue({ $0.directSink }) { sink(message); return }
        let event = Self.sseEvent(message)
        for c in state.withLockedValue({ Array($0.streams.values) }) { c.yield(event) }
    }
    /// One JSON-RPC message as a server-sent event: every SSE reply of the gateway is framed here
    /// (one `data:` line: see `JSONLine`).
    static func sseEvent(_ message: [UInt8]) -> [UInt8] {
        Array("event: message\ndata: ".utf8) + JSONLine.flatten(message) + Array("\n\n".utf8)
    }
    func sendRaw(_ bytes: [UInt8], to id: UUID) { _ = state.withLockedValue { $0.streams[id] }?.yield(bytes) }
}

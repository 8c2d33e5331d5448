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
            defer { s.streams.removeAll() }
            return Array(s.streams.values)
        }
        all.forEach { $0.finish() }
    }
    /// True while at least one event stream is open.
    var hasStreams: Bool { state.withLockedValue { !$0.streams.isEmpty } }
    /// Sends one JSON-RPC message as an SSE event on every open stream of this session.
    func send(_ message: [UInt8]) {
        let event = Array("event: message\ndata: ".utf8) + message + Array("\n\n".utf8)
        for c in state.withLockedValue({ Array($0.streams.values) }) { c.yield(event) }
    }
    func sendRaw(_ bytes: [UInt8], to id: UUID) { _ = state.withLockedValue { $0.streams[id] }?.yield(bytes) }
}

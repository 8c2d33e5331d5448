import Foundation
import NIOCore
import NIOConcurrencyHelpers
import ProxyCore

/// A transport carrying whole JSON-RPC messages to an upstream server.
public protocol UpstreamTransport: AnyObject, Sendable {
    /// Sends one message (without a trailing newline).
    func send(_ message: [UInt8]) async throws
    /// Closes the transport; pending requests are failed by the peer.
    func close() async
    /// Starts sending without waiting; failures are reported to `onFailure`. Transports that can
    /// write without suspending (stdio pipes) override this to avoid a task per message.
    func sendDetached(_ message: [UInt8], onFailure: @escaping @Sendable (Error) -> Void)
}

extension UpstreamTransport {
    public func sendDetached(_ message: [UInt8], onFailure: @escaping @Sendable (Error) -> Void) {
        Task {
            do { try await self.send(message) } catch { onFailure(error) }
        }
    }
}

/// Request/response correlation over a transport. The proxy numbers its own requests upstream,
/// so ids of different clients never collide; responses are matched back by that number.
/// Lock-protected rather than an actor: it sits on the hot path and is called from NIO threads.
public final class JSONRPCPeer: @unchecked Sendable {
    private struct Pending {
        let continuation: CheckedContinuation<RawMessage, Error>
        let timeout: Scheduled<Void>?
    }
    private let lock = NIOLock()
    private var nextID = 1
    private var pending: [Int: Pending] = [:]
    private var closedError: ProxyError?
    private let eventLoop: EventLoop
    private let serverName: String
    public var transport: UpstreamTransport?
    /// Called for notifications from the server (on a NIO thread; keep it short).
    public var onNotification: (@Sendable (String, RawMessage) -> Void)?

    public init(serverName: String, eventLoop: EventLoop) {
        self.serverName = serverName
        self.eventLoop = eventLoop
    }

    /// Number of requests awaiting a response.
    public var inFlight: Int { lock.withLock { pending.count } }

    /// Sends a request and waits for its response (which may be a JSON-RPC error response).
    public func request(method: String, params: [UInt8]?, timeout: Double) async throws -> RawMessage {
        guard let transport else { throw ProxyError(.unavailable, "upstream server \"\(serverName)\" is not connected") }
        let id: Int = try lock.withLock {
            if let closedError { throw closedError }
            defer { nextID += 1 }
            return nextID
        }
        let message = JSONRPC.request(id: id, method: method, rawParams: params)
        return try await withCheckedThrowingContinuation { (cont: CheckedContinuation<RawMessage, Error>) in
            let scheduled: Scheduled<Void>? = timeout > 0 ? eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout * 1e9))) { [weak self] in
                self?.resolve(id: id, with: .failure(ProxyError(.timeout, "upstream server \"\(self?.serverName ?? "")\" did not answer \(method) within \(Self.format(timeout))")))
            } : nil
            let failure: ProxyError? = lock.withLock {
                if let closedError { return closedError }
                pending[id] = Pending(continuation: cont, timeout: scheduled)
                return nil
            }
            if let failure { scheduled?.cancel(); cont.resume(throwing: failure); return }
            transport.sendDetached(message) { error in
                self.resolve(id: id, with: .failure(ProxyError(.upstreamFailed, "sending to upstream server \"\(self.serverName)\" failed", cause: "\(error)")))
            }
        }
    }

    /// Sends a notification.
    public func notify(method: String, params: JSONValue? = nil) async throws {
        guard let transport else { throw ProxyError(.unavailable, "upstream server \"\(serverName)\" is not connected") }
        try await transport.send(JSONRPC.notification(method: method, params: params))
    }

    private func resolve(id: Int, with result: Result<RawMessage, Error>) {
        let p = lock.withLock { pending.removeValue(forKey: id) }
        guard let p else { return }
        p.timeout?.cancel()
        p.continuation.resume(with: result)
    }

    /// Feeds one received message.
    public func deliver(_ bytes: [UInt8]) {
        guard let message = RawMessage(bytes: bytes) else { return }
        switch message.envelope.kind {
        case .response:
            guard let idBytes = message.envelope.id, let id = Self.intID(idBytes) else { return }
            resolve(id: id, with: .success(message))
        case .notification:
            onNotification?(message.envelope.method ?? "", message)
        case .request:
            // Server-to-client requests: answer ping; we offer no roots, sampling or elicitation.
            guard let transport, let id = message.envelope.id else { return }
            let reply: [UInt8] = message.envelope.method == "ping"
                ? JSONRPC.result(id: id, json: "{}")
                : JSONRPC.error(id: id, code: -32601, message: "mcpproxy does not support \(message.envelope.method ?? "") from upstream servers")
            Task { try? await transport.send(reply) }
        }
    }

    /// Fails every pending request and refuses new ones.
    public func fail(_ error: ProxyError) {
        let all: [Pending] = lock.withLock {
            if closedError == nil { closedError = error }
            defer { pending.removeAll() }
            return Array(pending.values)
        }
        for p in all {
            p.timeout?.cancel()
            p.continuation.resume(throwing: error)
        }
    }

    static func intID(_ bytes: [UInt8]) -> Int? {
        var b = bytes[...]
        if b.first == UInt8(ascii: "\""), b.last == UInt8(ascii: "\""), b.count >= 2 { b = b.dropFirst().dropLast() }
        return Int(String(decoding: b, as: UTF8.self))
    }

    static func format(_ seconds: Double) -> String {
        seconds < 1 ? "\(Int(seconds * 1000)) ms" : "\(seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)) s"
    }
}

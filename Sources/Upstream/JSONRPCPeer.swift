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
    /// Gives up on a request that timed out: transports that hold a stream or connection per
    /// request (streamable HTTP) cancel it, so a stalled reply does not keep a pooled connection.
    func cancel(requestID: [UInt8])
}

extension UpstreamTransport {
    public func sendDetached(_ message: [UInt8], onFailure: @escaping @Sendable (Error) -> Void) {
        Task {
            do { try await self.send(message) } catch { onFailure(error) }
        }
    }
    public func cancel(requestID: [UInt8]) {}
}

/// Request/response correlation over a transport. The proxy numbers its own requests upstream,
/// so ids of different clients never collide; responses are matched back by that number.
/// Lock-protected rather than an actor: it sits on the hot path and is called from NIO threads.
public final class JSONRPCPeer: @unchecked Sendable {  // @unchecked: mutable state is guarded by `lock`; `transport` and the callbacks are set before the first request
    private struct Pending {
        let continuation: CheckedContinuation<RawMessage, Error>
        let deadline: UInt64  // DispatchTime uptime ns; 0 = none
        let method: String
        let timeout: Double
    }
    /// One repeating sweep per peer finds expired requests: cheaper than a scheduled task (and an
    /// event-loop wake-up) per request on the hot path. Timeouts are therefore ±100 ms.
    private var sweeper: RepeatedTask?
    private let lock = NIOLock()
    private var nextID = 1
    private var pending: [Int: Pending] = [:]
    private var closedError: ProxyError?
    /// Progress tokens of requests in flight → who wants their `notifications/progress`.
    private var progressHandlers: [String: @Sendable (RawMessage) -> Void] = [:]
    private let eventLoop: EventLoop
    private let serverName: String
    public var transport: UpstreamTransport?
    /// Called for notifications from the server (on a NIO thread; keep it short).
    public var onNotification: (@Sendable (String, RawMessage) -> Void)?
    /// Answers the server's requests other than ping (sampling, elicitation, roots): returns the
    /// whole reply message, with the server's id. Without it they are answered `methodNotFound`.
    public var onRequest: (@Sendable (RawMessage) async -> [UInt8])?
    /// Called when the run of requests that timed out in a row changes: with its length and the
    /// last timeout's message after a timeout, with 0 and nil when an answer ends the run.
    public var onTimeoutStreak: (@Sendable (Int, String?) -> Void)?
    private var timeoutStreak = 0

    public init(serverName: String, eventLoop: EventLoop) {
        self.serverName = serverName
        self.eventLoop = eventLoop
    }

    /// Number of requests awaiting a response.
    public var inFlight: Int { lock.withLock { pending.count } }
    /// Requests other than health pings awaiting a response: a server with these is busy.
    public var callsInFlight: Int { lock.withLock { pending.values.filter { $0.method != "ping" }.count } }

    /// Sends a request and waits for its response (which may be a JSON-RPC error response).
    ///
    /// Cancelling the calling task gives up on the request: the server is sent
    /// `notifications/cancelled` for it (so it can stop the work) and the call throws
    /// `CancellationError`. `progress`, with the `progressToken` the caller put into `params`'
    /// `_meta`, receives each `notifications/progress` the server sends for that token until the
    /// request ends.
    public func request(method: String, params: [UInt8]?, timeout: Double,
                        progress: (token: String, handler: @Sendable (RawMessage) -> Void)? = nil) async throws -> RawMessage {
        guard let transport else { throw ProxyError(.unavailable, "upstream server \"\(serverName)\" is not connected") }
        let id: Int = try lock.withLock {
            if let closedError { throw closedError }
            defer { nextID += 1 }
            if let progress { progressHandlers[progress.token] = progress.handler }
            return nextID
        }
        defer { if let progress { lock.withLock { _ = progressHandlers.removeValue(forKey: progress.token) } } }
        let message = JSONRPC.request(id: id, method: method, rawParams: params)
        let deadline = timeout > 0 ? DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9) : 0
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<RawMessage, Error>) in
                let failure: Error? = lock.withLock {
                    if let closedError { return closedError }
                    // Cancelled before it was sent: nothing to tell the server.
                    if Task.isCancelled { return CancellationError() }
                    pending[id] = Pending(continuation: cont, deadline: deadline, method: method, timeout: timeout)
                    if sweeper == nil { startSweeper() }
                    return nil
                }
                if let failure { cont.resume(throwing: failure); return }
                transport.sendDetached(message) { error in
                    self.resolve(id: id, with: .failure(ProxyError(.upstreamFailed, "sending to upstream server \"\(self.serverName)\" failed", cause: error)))
                }
            }
        } onCancel: {
            self.cancel(id: id, reason: "the client cancelled the request")
        }
    }

    /// Gives up on pending request `id`: tells the server (`notifications/cancelled`, MCP
    /// cancellation) and fails the waiter with `CancellationError`. A request already answered
    /// is left alone.
    private func cancel(id: Int, reason: String) {
        guard let p = lock.withLock({ pending.removeValue(forKey: id) }) else { return }
        if let transport {
            let note = JSONRPC.notification(method: "notifications/cancelled",
                                            params: ["requestId": .number(Double(id)), "reason": .string(reason)])
            transport.sendDetached(note) { _ in }
            transport.cancel(requestID: Array(String(id).utf8))
        }
        p.continuation.resume(throwing: CancellationError())
    }

    /// Sends a notification.
    public func notify(method: String, params: JSONValue? = nil) async throws {
        guard let transport else { throw ProxyError(.unavailable, "upstream server \"\(serverName)\" is not connected") }
        try await transport.send(JSONRPC.notification(method: method, params: params))
    }

    private func resolve(id: Int, with result: Result<RawMessage, Error>) {
        let p = lock.withLock { pending.removeValue(forKey: id) }
        guard let p else { return }
        p.continuation.resume(with: result)
    }

    /// Any answer shows the server is responsive again.
    private func answered() {
        let ended = lock.withLock { () -> Bool in
            defer { timeoutStreak = 0 }
            return timeoutStreak > 0
        }
        if ended { onTimeoutStreak?(0, nil) }
    }

    /// Called with the lock held.
    private func startSweeper() {
        sweeper = eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { [weak self] task in
            guard let self else { task.cancel(); return }
            let now = DispatchTime.now().uptimeNanoseconds
            let expired: [(Int, Pending)] = self.lock.withLock {
                let due = self.pending.filter { $0.value.deadline != 0 && $0.value.deadline <= now }
                for (id, _) in due { self.pending.removeValue(forKey: id) }
                return due.map { ($0.key, $0.value) }
            }
            guard !expired.isEmpty else { return }
            let streak = self.lock.withLock { () -> Int in
                self.timeoutStreak += expired.count
                return self.timeoutStreak
            }
            let messages = expired.map { "upstream server \"\(self.serverName)\" did not answer \($0.1.method) within \(Self.format($0.1.timeout))" }
            // The streak is reported before any waiter resumes, so whoever sees the timeout
            // error also sees the server's state that it caused.
            self.onTimeoutStreak?(streak, messages.last)
            for ((id, p), message) in zip(expired, messages) {
                self.transport?.cancel(requestID: Array(String(id).utf8))
                p.continuation.resume(throwing: ProxyError(.timeout, message))
            }
        }
    }

    /// Feeds one received message.
    public func deliver(_ bytes: [UInt8]) {
        guard let message = RawMessage(bytes: bytes) else { return }
        switch message.envelope.kind {
        case .response:
            guard let idBytes = message.envelope.id, let id = Self.intID(idBytes) else { return }
            answered()
            resolve(id: id, with: .success(message))
        case .notification:
            if message.envelope.method == "notifications/progress" {
                // Routed by token to the request that asked for it; a stray token is dropped.
                if let token = message.progressToken, let handler = lock.withLock({ progressHandlers[token] }) { handler(message) }
                return
            }
            onNotification?(message.envelope.method ?? "", message)
        case .request:
            // Server-to-client requests: ping is answered here; the others go to `onRequest`
            // (which routes them to the client whose call is in flight, when allowed).
            guard let transport, let id = message.envelope.id else { return }
            if message.envelope.method != "ping", let onRequest {
                Task { try? await transport.send(await onRequest(message)) }
                return
            }
            let reply: [UInt8] = message.envelope.method == "ping"
                ? JSONRPC.result(id: id, json: "{}")
                : JSONRPC.error(id: id, ProxyError(.methodNotFound, "mcpproxy does not support \(message.envelope.method ?? "") from upstream servers"))
            Task { try? await transport.send(reply) }
        }
    }

    /// Fails one pending request (no-op when it was already answered).
    public func abandon(id: [UInt8], error: ProxyError) {
        guard let n = Self.intID(id) else { return }
        resolve(id: n, with: .failure(error))
    }

    /// Fails every pending request and refuses new ones.
    public func fail(_ error: ProxyError) {
        let all: [Pending] = lock.withLock {
            if closedError == nil { closedError = error }
            sweeper?.cancel()
            sweeper = nil
            defer { pending.removeAll() }
            return Array(pending.values)
        }
        for p in all { p.continuation.resume(throwing: error) }
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

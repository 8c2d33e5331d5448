import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import ProxyCore

/// MCP streamable HTTP upstream: each message is a POST; replies come back as JSON or as an SSE
/// stream; the server's `Mcp-Session-Id` is echoed on every later request; a GET stream carries
/// server-initiated notifications when the server offers one.
public final class StreamableHTTPTransport: UpstreamTransport, @unchecked Sendable {  // @unchecked: `sessionID`, `protocolVersion`, the task tables and `closed` are guarded by `lock`
    private let client: HTTPClient
    private let url: String
    private let displayURL: String
    private let headers: [String: String]
    private let deliver: @Sendable ([UInt8]) -> Void
    private let lock = NIOLock()
    private var sessionID: String?
    private var protocolVersion: String?
    private var tasks: [UUID: Task<Void, Never>] = [:]
    private var requests: [String: Task<Void, Never>] = [:]
    private var closed = false
    private let maxMessageBytes: Int
    /// Called with a request's id when its reply stream ended without a reply (the server died).
    private let onUnanswered: @Sendable ([UInt8]) -> Void

    private let traces: TraceHooks

    /// `displayURL`: what messages show (the config's URL, with `${secret:...}` references
    /// unresolved); `url` is what is connected to.
    public init(client: HTTPClient, url: String, displayURL: String? = nil, headers: [String: String], maxMessageBytes: Int,
                traces: TraceHooks = .off,
                deliver: @escaping @Sendable ([UInt8]) -> Void,
                onUnanswered: @escaping @Sendable ([UInt8]) -> Void = { _ in }) {
        self.traces = traces
        self.onUnanswered = onUnanswered
        self.client = client
        self.url = url
        self.displayURL = URLRedaction.redact(displayURL ?? url)
        self.headers = headers
        self.deliver = deliver
        self.maxMessageBytes = maxMessageBytes
    }

    public func setProtocolVersion(_ v: String) { lock.withLock { protocolVersion = v } }

    private func baseHeaders() -> HTTPHeaders {
        var h = HTTPHeaders()
        for (k, v) in headers { h.add(name: k, value: v) }
        let (sid, pv) = lock.withLock { (sessionID, protocolVersion) }
        if let sid { h.replaceOrAdd(name: "Mcp-Session-Id", value: sid) }
        if let pv { h.replaceOrAdd(name: "MCP-Protocol-Version", value: pv) }
        return h
    }

    public func send(_ message: [UInt8]) async throws {
        try await post(message, inline: false)
    }

    /// Requests run in a task of their own, keyed by JSON-RPC id, so that a request that timed
    /// out can be cancelled: cancelling the task cancels the HTTP request, which closes its
    /// connection (a stalled SSE reply would otherwise hold a pooled connection forever).
    public func sendDetached(_ message: [UInt8], onFailure: @escaping @Sendable (Error) -> Void) {
        let key = (try? JSONRPCEnvelope.parse(message)).flatMap { $0.kind == .request ? $0.id : nil }
            .map { String(decoding: $0, as: UTF8.self) }
        let task = Task {
            do { try await self.post(message, inline: true) } catch {
                if !Task.isCancelled { onFailure(error) }
            }
            if let key { self.lock.withLock { _ = self.requests.removeValue(forKey: key) } }
        }
        if let key {
            let late = lock.withLock { () -> Bool in
                if closed { return true }
                requests[key] = task
                return false
            }
            if late { task.cancel() }
        }
    }

    public func cancel(requestID: [UInt8]) {
        let key = String(decoding: requestID, as: UTF8.self)
        lock.withLock { requests.removeValue(forKey: key) }?.cancel()
    }

    /// Number of requests whose HTTP exchange is still open (tests, diagnostics).
    public var openRequests: Int { lock.withLock { requests.count } }

    private func post(_ message: [UInt8], inline: Bool) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers = baseHeaders()
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.headers.replaceOrAdd(name: "Accept", value: "application/json, text/event-stream")
        traces.inject(into: &request.headers)
        request.body = .bytes(ByteBuffer(bytes: message))
        let response = try await client.execute(request, timeout: .hours(24))
        if let sid = response.headers.first(name: "Mcp-Session-Id") { lock.withLock { sessionID = sid } }
        guard (200..<300).contains(response.status.code) else {
            let body = (try? await response.body.collect(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
            throw ProxyError(.upstreamFailed, "HTTP \(response.status.code) from \(displayURL)", detail: body.isEmpty ? nil : String(body.prefix(300)))
        }
        if response.status.code == 202 { return }
        let contentType = response.headers.first(name: "Content-Type")?.lowercased() ?? ""
        if contentType.hasPrefix("text/event-stream"), inline {
            // Already in the request's own (cancellable) task: read the stream here.
            let requestID = (try? JSONRPCEnvelope.parse(message)).flatMap { $0.kind == .request ? $0.id : nil }
            await Self.deliverMessages(of: response, to: deliver)
            if let requestID, !Task.isCancelled { onUnanswered(requestID) }
        } else if contentType.hasPrefix("text/event-stream") {
            // Read the stream in the background so that send() returns; replies are delivered.
            let id = UUID()
            let requestID = (try? JSONRPCEnvelope.parse(message)).flatMap { $0.kind == .request ? $0.id : nil }
            let task = Task { [deliver, onUnanswered] in
                await Self.deliverMessages(of: response, to: deliver)
                // A reply delivered above already resolved the request; otherwise fail it now
                // rather than at the call timeout.
                if let requestID { onUnanswered(requestID) }
                self.lock.withLock { _ = self.tasks.removeValue(forKey: id) }
            }
            lock.withLock { tasks[id] = task }
        } else {
            let body = try await response.body.collect(upTo: maxMessageBytes)
            let bytes = Array(body.readableBytesView)
            // A JSON array is a batch of messages.
            if let first = bytes.first(where: { !JSONSpan.isSpace($0) }), first == UInt8(ascii: "[") {
                bytes.withUnsafeBufferPointer { p in
                    for r in JSONSpan.elements(p, 0..<p.count) ?? [] { deliver(Array(p[r])) }
                }
            } else if !bytes.isEmpty {
                deliver(bytes)
            }
        }
    }

    /// Opens the optional GET stream for server-initiated messages (e.g. tools/list_changed).
    public func openNotificationStream() {
        let id = UUID()
        let task = Task { [client, url, deliver] in
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            request.headers = self.baseHeaders()
            request.headers.replaceOrAdd(name: "Accept", value: "text/event-stream")
            guard let response = try? await client.execute(request, timeout: .hours(24 * 365)),
                  response.status.code == 200 else { return }
            await Self.deliverMessages(of: response, to: deliver)
        }
        lock.withLock { tasks[id] = task }
    }

    /// Delivers the `message` events of an SSE response body until it ends.
    static func deliverMessages(of response: HTTPClientResponse, to deliver: @Sendable ([UInt8]) -> Void) async {
        var parser = SSEParser()
        do {
            for try await chunk in response.body {
                for e in parser.feed(chunk.readableBytesView) where e.event == "message" && !e.dataBytes.isEmpty {
                    deliver(e.dataBytes)
                }
            }
        } catch {}
    }

    public func close() async {
        let (all, sid) = lock.withLock { () -> ([Task<Void, Never>], String?) in
            closed = true
            defer { tasks.removeAll(); requests.removeAll() }
            return (Array(tasks.values) + Array(requests.values), sessionID)
        }
        all.forEach { $0.cancel() }
        if sid != nil {
            var request = HTTPClientRequest(url: url)
            request.method = .DELETE
            request.headers = baseHeaders()
            _ = try? await client.execute(request, timeout: .seconds(2))
        }
    }
}

/// The legacy HTTP+SSE upstream transport: a GET event stream announces (event `endpoint`) the
/// URL to POST messages to; replies arrive on the stream.
public final class SSETransport: UpstreamTransport, @unchecked Sendable {  // @unchecked: `endpoint` and `streamTask` are guarded by `lock`
    private let client: HTTPClient
    private let url: String
    private let displayURL: String
    private let headers: [String: String]
    private let deliver: @Sendable ([UInt8]) -> Void
    private let onClosed: @Sendable (String) -> Void
    private let lock = NIOLock()
    private var endpoint: String?
    private var streamTask: Task<Void, Never>?
    private let traces: TraceHooks

    public init(client: HTTPClient, url: String, displayURL: String? = nil, headers: [String: String], traces: TraceHooks = .off,
                deliver: @escaping @Sendable ([UInt8]) -> Void, onClosed: @escaping @Sendable (String) -> Void) {
        self.traces = traces
        self.client = client
        self.url = url
        self.displayURL = URLRedaction.redact(displayURL ?? url)
        self.headers = headers
        self.deliver = deliver
        self.onClosed = onClosed
    }

    /// Connects the event stream and waits for the `endpoint` event.
    public func connect(timeout: Double) async throws {
        let ready = AsyncStream<Result<String, Error>>.makeStream()
        let task = Task { [client, url, displayURL, headers, deliver, onClosed] in
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            for (k, v) in headers { request.headers.add(name: k, value: v) }
            request.headers.replaceOrAdd(name: "Accept", value: "text/event-stream")
            do {
                let response = try await client.execute(request, timeout: .hours(24 * 365))
                guard response.status.code == 200 else {
                    throw ProxyError(.upstreamFailed, "HTTP \(response.status.code) from \(displayURL)")
                }
                var parser = SSEParser()
                for try await chunk in response.body {
                    for e in parser.feed(chunk.readableBytesView) {
                        if e.event == "endpoint" {
                            ready.continuation.yield(.success(e.data))
                        } else if e.event == "message", !e.dataBytes.isEmpty {
                            deliver(e.dataBytes)
                        }
                    }
                }
                onClosed("the SSE stream ended")
            } catch {
                ready.continuation.yield(.failure(error))
                onClosed("the SSE stream failed: \(error)")
            }
            ready.continuation.finish()
        }
        lock.withLock { streamTask = task }
        let timer = Task { try? await Task.sleep(nanoseconds: UInt64(timeout * 1e9)); ready.continuation.finish() }
        defer { timer.cancel() }
        for await r in ready.stream {
            switch r {
            case .success(let path):
                let resolved = URL(string: path, relativeTo: URL(string: url))?.absoluteString ?? path
                lock.withLock { endpoint = resolved }
                return
            case .failure(let e): throw e
            }
        }
        throw ProxyError(.timeout, "no endpoint event from \(displayURL) within \(Int(timeout)) s")
    }

    public func send(_ message: [UInt8]) async throws {
        guard let endpoint = lock.withLock({ endpoint }) else { throw ProxyError(.unavailable, "SSE upstream not connected") }
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        traces.inject(into: &request.headers)
        request.body = .bytes(ByteBuffer(bytes: message))
        let response = try await client.execute(request, timeout: .seconds(60))
        _ = try? await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(response.status.code) else {
            throw ProxyError(.upstreamFailed, "HTTP \(response.status.code) from \(endpoint)")
        }
    }

    public func close() async {
        lock.withLock { streamTask }?.cancel()
    }
}

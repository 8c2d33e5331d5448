import AsyncHTTPClient
import NIOHTTP1
import ProxyCore
import Tracing

/// The proxy's tracing, passed explicitly (never a process-global bootstrap: tests run several
/// proxies in one process). `off` holds no tracer: every call below is then one nil check, so
/// tracing costs nothing unless configured.
///
/// Spans: one `server` span per client request (`mcp.method.name`, and the W3C trace context a
/// client sent as its parent), one `client` span per upstream request (`mcp.server`), and the
/// upstream span's context sent to HTTP upstreams as `traceparent`.
public struct TraceHooks: Sendable {
    public let tracer: (any Tracer)?

    public init(tracer: (any Tracer)?) { self.tracer = tracer }
    public static let off = TraceHooks(tracer: nil)

    public var enabled: Bool { tracer != nil }

    /// Runs `body` inside a span of `kind` that is current for everything `body` starts (child
    /// spans, HTTP requests carrying `traceparent`). An error thrown by `body` is recorded on
    /// the span and rethrown; `failed(result)` marks a result as an error (a JSON-RPC error).
    public func span<R: Sendable>(_ name: String, kind: SpanKind, attributes: [String: String] = [:],
                                  parent: ServiceContext? = nil, failed: (@Sendable (R) -> String?)? = nil,
                                  _ body: () async throws -> R) async rethrows -> R {
        guard let tracer else { return try await body() }
        let span = tracer.startSpan(name, context: parent ?? ServiceContext.current ?? .topLevel, ofKind: kind)
        for (k, v) in attributes { span.attributes[k] = v }
        defer { span.end() }
        do {
            let result = try await ServiceContext.$current.withValue(span.context) { try await body() }
            if let message = failed?(result) { span.setStatus(SpanStatus(code: .error, message: message)) }
            return result
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error, message: "\(error)"))
            throw error
        }
    }

    /// The trace context a client sent (`traceparent`, `tracestate`), or nil when it sent none or
    /// tracing is off.
    public func extract(_ header: (String) -> String?) -> ServiceContext? {
        guard let tracer, let parent = header("traceparent") else { return nil }
        var carrier = ["traceparent": parent]
        if let state = header("tracestate") { carrier["tracestate"] = state }
        var context = ServiceContext.topLevel
        tracer.extract(carrier, into: &context, using: DictionaryExtractor())
        return context
    }

    /// Adds the current span's context (`traceparent`, `tracestate`) to an upstream request.
    public func inject(into headers: inout HTTPHeaders) {
        guard let tracer, let context = ServiceContext.current else { return }
        tracer.inject(context, into: &headers, using: HTTPHeadersInjector())
    }
}

struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}

struct HTTPHeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout HTTPHeaders) {
        carrier.replaceOrAdd(name: key, value: value)
    }
}

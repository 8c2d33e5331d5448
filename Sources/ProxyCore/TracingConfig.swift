import Foundation

/// `tracing`: OpenTelemetry export of a span per client request and per upstream call (OTLP over
/// HTTP, protobuf). Absent: no tracer exists and nothing is recorded (no cost). Read at start; a
/// change takes effect at the next start.
public struct TracingConfig: Sendable, Equatable {
    /// `otlp_endpoint`: the full OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    public var endpoint: String
    /// `service_name` reported in the spans' resource.
    public var serviceName: String = "mcpproxy"
    /// `sample_ratio` (0...1) for traces that start here; a client's `traceparent` decides for its
    /// own traces (parent-based sampling).
    public var sampleRatio: Double = 1
    /// `export_interval`: how long finished spans wait to be sent in a batch, seconds.
    public var exportInterval: Double = 1

    public init(endpoint: String) { self.endpoint = endpoint }

    static let keys: Set<String> = ["otlp_endpoint", "service_name", "sample_ratio", "export_interval"]
}

extension Walker {
    mutating func tracing(_ v: Any, _ path: String) -> TracingConfig? {
        guard let o = object(v, path) else { return nil }
        unknownKeys(o, TracingConfig.keys, path)
        // Every field is checked, so one run of `doctor` shows every mistake.
        var endpoint: String?
        if let e = o["otlp_endpoint"], let value = string(e, "\(path).otlp_endpoint") {
            if let url = URL(string: value), ["http", "https"].contains(url.scheme ?? ""), url.host != nil { endpoint = value }
            else { error("\(path).otlp_endpoint", "expected an http:// or https:// URL, found \"\(URLRedaction.redact(value))\"") }
        } else if o["otlp_endpoint"] == nil {
            error("\(path).otlp_endpoint", "required: the OTLP/HTTP traces URL, e.g. \"http://127.0.0.1:4318/v1/traces\"")
        }
        var t = TracingConfig(endpoint: endpoint ?? "")
        if let x = o["service_name"], let s = string(x, "\(path).service_name") {
            if s.isEmpty { error("\(path).service_name", "must not be empty") } else { t.serviceName = s }
        }
        if let x = o["sample_ratio"] {
            if let n = x as? NSNumber, !CFGetTypeIDIsBool(n), (0...1).contains(n.doubleValue) { t.sampleRatio = n.doubleValue }
            else { error("\(path).sample_ratio", "expected a number from 0 to 1") }
        }
        if let x = o["export_interval"], let d = duration(x, "\(path).export_interval") {
            if d < 0.05 || d > 60 { error("\(path).export_interval", "must be from 50ms to 60s") } else { t.exportInterval = d }
        }
        guard endpoint != nil else { return nil }
        return t
    }
}

import Logging
import OTel
import ProxyCore
import ServiceLifecycle
import Tracing
import Upstream

extension ProxyRuntime {
    /// The tracer and its exporter service for `tracing` (nil config: tracing off, no tracer).
    /// swift-otel's OTLP/HTTP exporter sends protobuf batches; the standard `OTEL_*` environment
    /// variables still override (e.g. `OTEL_EXPORTER_OTLP_HEADERS` for a collector's token, kept
    /// out of the config file).
    static func makeTracing(_ config: TracingConfig?, logger: Logger) throws -> (TraceHooks, (any Service)?) {
        guard let config else { return (.off, nil) }
        var c = OTel.Configuration.default
        c.serviceName = config.serviceName
        c.metrics.enabled = false
        c.logs.enabled = false
        c.traces.enabled = true
        c.traces.exporter = .otlp
        c.traces.otlpExporter.endpoint = config.endpoint
        c.traces.batchSpanProcessor.scheduleDelay = .milliseconds(Int64(config.exportInterval * 1000))
        c.traces.sampler = .parentBasedTraceIDRatio(ratio: config.sampleRatio) ?? .parentBasedAlwaysOn
        c.propagators = [.traceContext]
        var diagnostics = logger
        diagnostics[metadataKey: "component"] = "otel"
        c.diagnosticLogger = .custom(diagnostics)
        c.diagnosticLogLevel = .warning
        let (tracer, service) = try OTel.makeTracingBackend(configuration: c)
        logger.info("tracing: exporting spans to \(URLRedaction.redact(config.endpoint)) (OTLP/HTTP, sample ratio \(config.sampleRatio))")
        return (TraceHooks(tracer: tracer), service)
    }
}

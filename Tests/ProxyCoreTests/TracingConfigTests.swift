import Foundation
import Testing
@testable import ProxyCore

/// `tracing` (docs/configuration.md): absent means off; every field checked, every mistake named.
@Suite struct TracingConfigTests {
    func load(_ text: String) throws -> ConfigLoader.Loaded {
        try ConfigLoader.parse(data: Data(text.utf8), file: "test.json")
    }

    @Test func absentIsOff() throws {
        #expect(try load(#"{"mcpServers":[]}"#).config.tracing == nil)
    }

    @Test func defaultsAndAllKeys() throws {
        let d = try #require(try load(#"{"tracing":{"otlp_endpoint":"http://127.0.0.1:4318/v1/traces"}}"#).config.tracing)
        #expect(d.endpoint == "http://127.0.0.1:4318/v1/traces")
        #expect(d.serviceName == "mcpproxy" && d.sampleRatio == 1 && d.exportInterval == 1)
        let l = try load(#"{"tracing":{"otlp_endpoint":"https://otel.example:4318/v1/traces","service_name":"gw","sample_ratio":0.25,"export_interval":"200ms"}}"#)
        #expect(l.warnings.isEmpty)
        let t = try #require(l.config.tracing)
        #expect(t.serviceName == "gw" && t.sampleRatio == 0.25 && t.exportInterval == 0.2)
    }

    @Test(arguments: [
        (#"{"tracing":{}}"#, "tracing.otlp_endpoint: required"),
        (#"{"tracing":{"otlp_endpoint":"localhost:4318"}}"#, "tracing.otlp_endpoint"),
        (#"{"tracing":{"otlp_endpoint":"grpc://x:4317"}}"#, "tracing.otlp_endpoint"),
        (#"{"tracing":{"otlp_endpoint":"http://x/v1/traces","sample_ratio":1.5}}"#, "tracing.sample_ratio"),
        (#"{"tracing":{"otlp_endpoint":"http://x/v1/traces","sample_ratio":true}}"#, "tracing.sample_ratio"),
        (#"{"tracing":{"otlp_endpoint":"http://x/v1/traces","export_interval":"10ms"}}"#, "tracing.export_interval"),
        (#"{"tracing":{"otlp_endpoint":"http://x/v1/traces","service_name":""}}"#, "tracing.service_name"),
        (#"{"tracing":"http://x"}"#, "tracing"),
    ])
    func invalid(_ text: String, _ expected: String) {
        do {
            _ = try load(text)
            Issue.record("accepted \(text)")
        } catch let e as ProxyError {
            #expect(e.code == .invalidConfig)
            #expect(e.message.contains(expected), "\(e.message)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func oneRunNamesEveryMistake() {
        do {
            _ = try load(#"{"tracing":{"otlp_endpoint":"ftp://user:pw@x","sample_ratio":-1,"export_interval":"2m"}}"#)
            Issue.record("accepted")
        } catch let e as ProxyError {
            for path in ["tracing.otlp_endpoint", "tracing.sample_ratio", "tracing.export_interval"] {
                #expect(e.message.contains(path), "\(e.message)")
            }
            #expect(!e.message.contains("pw"), "credentials in an endpoint are redacted: \(e.message)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func aTypoGetsAGuess() throws {
        let l = try load(#"{"tracing":{"otlp_endpoint":"http://x/v1/traces","sample_rate":0.5}}"#)
        let w = try #require(l.warnings.first { $0.path == "tracing.sample_rate" })
        #expect(w.message.contains("did you mean \"sample_ratio\"?"))
        let top = try load(#"{"tracin":{"otlp_endpoint":"http://x/v1/traces"}}"#)
        #expect(top.warnings.contains { $0.path == "tracin" && $0.message.contains("did you mean \"tracing\"?") })
    }
}

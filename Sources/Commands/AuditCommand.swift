import ArgumentParser
import Foundation
import Isolation
import ProxyCore
import MCPSecurity

/// `mcpproxy audit [--config PATH] [--json]`: checks the config for container misconfigurations
/// (and, with the container engine available, the configured user of the images). Exits 1 when a finding is
/// high, for CI use; 2 when the config cannot be read.
public struct AuditCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check the config for container misconfigurations (root user, privileged, Docker socket, broad mounts, no limits, ...).",
        discussion: "Exit status: 0 no high findings, 1 at least one high finding, 2 the config could not be read.")

    @Option(name: .long, help: "Config file (default: $MCPPROXY_CONFIG or ~/.mcpproxy/mcp_config.json).")
    public var config: String?

    @Flag(name: .long, help: "Print the report as JSON.")
    public var json = false

    public init() {}

    public func run() async throws {
        let settings = ProcessSettings.current
        let home = settings.home
        let path = config ?? settings.defaultConfigPath
        let loaded: ConfigLoader.Loaded
        do { loaded = try ConfigLoader.load(path: path) } catch {
            FileHandle.standardError.write(Data("mcpproxy audit: \(error)\n".utf8))
            throw ExitCode((error as? ProxyError)?.code ?? .invalidConfig)
        }
        let engine = ContainerEngines.named(loaded.config.dockerIsolation.engine) ?? .docker
        let auditor = ConfigAuditor(home: home, imageUser: { image in AuditCommand.imageUser(image, engine: engine) })
        let report = auditor.audit(loaded.config)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            var out = try encoder.encode(report)
            out.append(0x0A)
            FileHandle.standardOutput.write(out)
        } else {
            print(AuditCommand.render(report, path: path, serverCount: loaded.config.servers.count))
        }
        if report.hasHigh { throw ExitCode.findings }
    }

    /// The report as text for a terminal.
    public static func render(_ report: AuditReport, path: String, serverCount: Int) -> String {
        var lines: [String] = []
        if report.findings.isEmpty {
            lines.append("\(path): \(serverCount) server(s) audited, no findings")
        } else {
            let sorted = report.findings.sorted { ($0.severity, $1.server) > ($1.severity, $0.server) }
            for f in sorted {
                lines.append("\(f.severity.rawValue.uppercased()) \(f.server) [\(f.ruleID)] \(f.evidence)")
                lines.append("    why: \(f.why)")
                lines.append("    fix: \(f.fix)")
            }
            let high = report.findings.filter { $0.severity == .high }.count
            lines.append("\(path): \(serverCount) server(s) audited, \(report.findings.count) finding(s), \(high) high")
        }
        if !report.unverifiedImages.isEmpty {
            lines.append("image users not verified (Docker unavailable or image absent): \(report.unverifiedImages.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }

    /// `ENGINE image inspect --format {{.Config.User}} IMAGE`; nil when the engine or the image
    /// is unavailable.
    static func imageUser(_ image: String, engine: ContainerEngine) -> String? {
        let env = ProcessSettings.current.only(Set(engine.endpointVariables))
        let r = engine.runBlocking(["image", "inspect", "--format", "{{.Config.User}}", image], environment: env, timeout: 30)
        guard r.status == 0 else { return nil }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

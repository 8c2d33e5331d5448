import ArgumentParser
import Foundation
import ProxyCore
import MCPSecurity

/// `mcpproxy scan NAME`: the tool-description scan of a server, from the running proxy.
struct ScanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scan", abstract: "Show the tool-description scan of a server (asks the running proxy).")
    @OptionGroup var paths: PathOptions
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Argument(help: "Server name.") var name: String

    func run() async throws {
        guard let proxy = RunningProxy.locate(paths: paths) else {
            throw ProxyError(.unavailable, "cannot find the proxy's address and API key (config \(paths.resolvedConfig), data dir \(paths.resolvedDataDir))")
        }
        guard let (status, body) = await proxy.call(.GET, "/api/v1/servers/\(name)/security") else {
            print("mcpproxy is not answering at \(proxy.base); start it with `mcpproxy serve` (scans run when a server connects)")
            throw ExitCode(.unavailable)
        }
        guard status == 200 else {
            print("error: \(RunningProxy.message(body))")
            throw ExitCode(RunningProxy.failure(status: status, body: body).code)
        }
        if json { print(body.serialized()); return }
        let quarantined = body["quarantined"]?.boolValue ?? false
        print("server \(name): \(quarantined ? "quarantined" : "approved")")
        if let scan = body["scan"], scan != .null,
           let report = try? JSONDecoder().decode(ScanReport.self, from: scan.data) {
            print(report.renderText())
            if report.findings.contains(where: { $0.severity == .hard }) { throw ExitCode.findings }
        } else {
            print("no scan yet: the server has not connected")
        }
        if let hint = body["hint"]?.stringValue { print(hint) }
    }
}

import ArgumentParser
import Foundation
import Gateway
import ProxyCore

/// `mcpproxy status`: a compact live table of the running proxy's servers (state, approval,
/// isolation, calls per second, errors, CPU, memory, pids), from its REST API.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the running proxy's servers: state, isolation, calls/s, errors, CPU, memory (asks the running proxy).")
    @OptionGroup var paths: PathOptions
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Flag(name: .long, help: "Refresh until interrupted (or --count times).") var watch = false
    @Option(name: .long, help: "Seconds between readings (rates are over this interval).") var interval: Double = 1
    @Option(name: .long, help: "With --watch: stop after this many refreshes.") var count: Int?

    func validate() throws {
        guard interval >= 0.1, interval <= 3600 else { throw ValidationError("--interval must be from 0.1 to 3600 seconds") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() async throws {
        guard let proxy = RunningProxy.locate(paths: paths) else {
            throw ProxyError(.unavailable, "cannot find the proxy's address and API key (config \(paths.resolvedConfig), data dir \(paths.resolvedDataDir))")
        }
        func read() async throws -> (JSONValue, JSONValue, Date) {
            guard let (code, servers) = await proxy.call(.GET, "/api/v1/servers"),
                  let (_, about) = await proxy.call(.GET, "/api/v1/status") else {
                print("mcpproxy is not answering at \(proxy.base); start it with `mcpproxy serve`")
                throw ExitCode(.unavailable)
            }
            guard code == 200 else {
                print("error: \(RunningProxy.message(servers))")
                throw ExitCode(RunningProxy.failure(status: code, body: servers).code)
            }
            return (servers, about, Date())
        }
        let tty = isatty(1) == 1
        var previous = try await read()
        var shown = 0
        while true {
            try await Task.sleep(nanoseconds: UInt64(interval * 1e9))
            let current = try await read()
            let view = StatusView(previous: previous.0, current: current.0, elapsed: current.2.timeIntervalSince(previous.2))
            if json {
                print(JSONValue.object(["proxy": current.1, "interval_seconds": .number(interval), "servers": view.json()]).serialized())
            } else {
                if watch && tty { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                let a = current.1
                let up = a["uptime_seconds"]?.numberValue.map { Self.duration($0) } ?? "?"
                print("mcpproxy \(a["version"]?.stringValue ?? "") at \(proxy.base), up \(up), "
                      + "\(a["servers_ready"]?.intValue ?? 0)/\(a["servers_total"]?.intValue ?? 0) servers ready, \(a["tools_total"]?.intValue ?? 0) tools")
                print(view.render())
            }
            fflush(nil)  // every output stream (no reference to the global `stdout`)
            shown += 1
            if !watch || (count.map { shown >= $0 } ?? false) { return }
            previous = current
        }
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s)
        if t >= 86400 { return "\(t / 86400)d\((t % 86400) / 3600)h" }
        if t >= 3600 { return "\(t / 3600)h\((t % 3600) / 60)m" }
        if t >= 60 { return "\(t / 60)m\(t % 60)s" }
        return "\(t)s"
    }
}

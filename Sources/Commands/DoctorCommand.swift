import ArgumentParser
import Foundation
import Gateway
import Isolation
import MCPSecurity
import ProxyCore

/// `mcpproxy doctor [SERVER]`: checks the config and shows how each server would be launched
/// (isolation decision with its reason, the redacted argv, enforcement), without starting it.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "doctor", abstract: "Check the config and show each server's launch plan.")
    @OptionGroup var paths: PathOptions
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Argument(help: "Only this server.") var server: String?

    func run() async throws {
        let loaded: ConfigLoader.Loaded
        do { loaded = try ConfigLoader.load(path: paths.resolvedConfig) } catch let e as ProxyError {
            print("config: \(e.description)")
            throw ExitCode(e.code)
        }
        let config = loaded.config
        var servers = config.servers
        if let server {
            guard let s = config.server(named: server) else {
                print("no server named \"\(server)\" in \(paths.resolvedConfig)")
                throw ExitCode(.notFound)
            }
            servers = [s]
        }
        let home = ProcessSettings.current.home
        var ctx = LaunchContext(dataDir: paths.resolvedDataDir, instanceID: "doctor", proxyPID: getpid(),
                                hostEnvironment: ProcessSettings.current.environment,
                                sandboxLauncher: ProxyRuntimeLauncherPath.find(), runtimeDir: paths.resolvedDataDir + "/run",
                                homeDir: home, launchID: "doctor",
                                proxyListenPorts: ListenAddress.parse(config.listen).map { [$0.port] } ?? [])
        ctx.secretsBaseDir = SecretDelivery.baseDirectory()
        var out: [JSONValue] = []
        var failed = false
        let holds = Self.monitorHolds(dataDir: paths.resolvedDataDir)
        for s in servers {
            // Planned as the proxy plans it (secret variables through the launcher's file); the
            // plan holds references only, never values (nothing is resolved here).
            ctx.secretEnvNames = SecretResolver.secretEnvironmentNames(of: s)
            let decision = IsolationResolver.resolve(s, global: config.dockerIsolation)
            var o: [String: JSONValue] = ["name": .string(s.name), "protocol": .string(s.effectiveProtocol.rawValue),
                                          "enabled": .bool(s.enabled),
                                          "isolation": ["mode": .string(decision.mode.rawValue), "reason": .string(decision.reason)]]
            if s.effectiveProtocol == .stdio {
                do {
                    let plan = try Launcher.plan(server: s, config: config, context: ctx)
                    o["launch"] = RESTAPI.planJSON(plan)
                    // Where the server will run (this host, or inside its image), the command must be there.
                    if s.enabled, let cmd = s.command {
                        switch await IsolationBackends.standard.backend(for: plan.mode)
                            .checkCommand(plan, command: cmd, hostEnvironment: ProcessSettings.current.environment) {
                        case .found(let at): o["command_found"] = .string(at)
                        case .missing(let why):
                            o["error"] = .string(why)
                            failed = true
                        case .unknown(let note): o["command_check"] = .string(note)
                        }
                    }
                } catch let e as ProxyError {
                    o["error"] = .string(e.description)
                    failed = true
                }
            } else if let u = s.url { o["url"] = .string(u) }
            if let h = holds[s.name] { o.merge(RESTAPI.holdFields(h)) { _, b in b } }
            out.append(.object(o))
        }
        let report: JSONValue = ["config": .string(paths.resolvedConfig),
                                 "warnings": .array(loaded.warnings.map { .string($0.description) }),
                                 "servers": .array(out)]
        if json {
            print(report.serialized())
        } else {
            print("config: \(paths.resolvedConfig) (valid)")
            for w in loaded.warnings { print("  warning: \(w)") }
            for case .object(let o) in out {
                print("\n\(o["name"]?.stringValue ?? "?")  [\(o["protocol"]?.stringValue ?? "")]")
                print("  isolation: \(o["isolation"]?["mode"]?.stringValue ?? "") (\(o["isolation"]?["reason"]?.stringValue ?? ""))")
                if let e = o["error"]?.stringValue { print("  ERROR: \(e)") }
                if let h = o["monitor_hold"] {
                    print("  HELD BY MONITOR (held_by_monitor): rule \(h["rule"]?.stringValue ?? "?"): \(h["reason"]?.stringValue ?? "")")
                    print("  it stays stopped until released: mcpproxy upstream release \(o["name"]?.stringValue ?? "")")
                }
                if let at = o["command_found"]?.stringValue { print("  command: \(at)") }
                if let note = o["command_check"]?.stringValue { print("  command: not checked: \(note)") }
                if let l = o["launch"] {
                    if let args = l["docker_run_args"]?.arrayValue {
                        print("  docker_run_args: \(JSONValue.array(args).serialized())")
                    } else {
                        print("  argv: \(l["argv"]?.serialized() ?? "")")
                    }
                    for case .string(let w) in l["warnings"]?.arrayValue ?? [] { print("  warning: \(w)") }
                    if let enf = l["enforcement"]?.objectValue, !enf.isEmpty {
                        print("  enforcement: " + enf.keys.sorted().map { "\($0)=\(enf[$0]!.stringValue ?? "")" }.joined(separator: ", "))
                    }
                }
                if let u = o["url"]?.stringValue { print("  url: \(u)") }
            }
        }
        if failed { throw ExitCode.findings }
    }
}

extension DoctorCommand {
    /// The runtime monitor's holds in the state database (none when it does not exist yet:
    /// doctor never creates it).
    static func monitorHolds(dataDir: String) -> [String: MonitorHold] {
        let path = (dataDir as NSString).appendingPathComponent(SecurityStore.fileName)
        guard FileManager.default.fileExists(atPath: path), let store = try? SecurityStore.open(path: path),
              let all = try? store.monitorHolds() else { return [:] }
        return Dictionary(all.map { ($0.server, $0) }, uniquingKeysWith: { a, _ in a })
    }
}

enum ProxyRuntimeLauncherPath {
    static func find() -> String? {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let c = ((exe as NSString).deletingLastPathComponent as NSString).appendingPathComponent("mcpproxy-sandbox")
        return FileManager.default.isExecutableFile(atPath: c) ? c : nil
    }
}

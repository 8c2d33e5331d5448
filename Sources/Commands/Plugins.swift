import Foundation
import Gateway
import Logging
import ProxyCore
import Security

/// Wires the optional layers (container lifecycle, security gate) into the runtime.
enum Plugins {
    static func make(dataDir: String, configPath: String) throws -> ProxyRuntime.Plugins {
        var plugins = ProxyRuntime.Plugins()
        // Docker isolation: container lifecycle around stdio launches, orphan cleanup at start.
        plugins.containerHooks = DockerContainerHooks()
        plugins.beforeStart.append(DockerContainerHooks.cleanupAtStart)
        // Security: quarantine, pinning, scanning, activity log. A corrupt or locked database
        // stops start-up with its message; it is never reset silently.
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let config = (try? ConfigLoader.load(path: configPath).config) ?? ProxyConfig()  // first run: no file yet
        let store = try SecurityStore.open(dataDir: dataDir)
        // The security log goes where the proxy's own log goes (main.log and stderr), never to
        // stdout, which carries the protocol in --stdio mode.
        let mainLog = LogFiles(directory: (dataDir as NSString).appendingPathComponent("logs")).main
        let securityLog = Logger(label: "security") { FileLogHandler(label: $0, files: [mainLog], level: .info, alsoStderr: true) }
        let gate = SecurityGate(store: store, log: securityLog, plugins: config.security.scanners,
                                logCallArguments: config.logCallArguments)
        plugins.gate = SecurityToolGate(gate: gate)
        plugins.restExtensions = [SecurityRESTExtension(gate: gate)]
        return plugins
    }
}

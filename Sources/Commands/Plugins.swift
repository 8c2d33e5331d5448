import Foundation
import Gateway
import Logging
import ProxyCore
import MCPSecurity

/// Wires the optional layers (container lifecycle, security gate) into the runtime.
enum Plugins {
    static func make(dataDir: String, config: ProxyConfig, logs: LogFiles) throws -> ProxyRuntime.Plugins {
        var plugins = ProxyRuntime.Plugins()
        // Docker isolation: container lifecycle around stdio launches, orphan cleanup at start.
        plugins.containerHooks = DockerContainerHooks()
        plugins.beforeStart.append(DockerContainerHooks.cleanupAtStart)
        // Security: quarantine, pinning, scanning, activity log. A corrupt or locked database
        // stops start-up with its message; it is never reset silently.
        let store = try SecurityStore.open(dataDir: dataDir)
        // The security log goes where the proxy's own log goes (main.log and stderr), never to
        // stdout, which carries the protocol in --stdio mode.
        let mainLog = logs.main
        let securityLog = Logger(label: "security") { FileLogHandler(label: $0, files: [mainLog], level: .info, alsoStderr: true) }
        store.onHealthChange { h in
            if h.failing {
                securityLog.error("the state database cannot be written: \(h.lastError ?? "unknown error"); approvals, pins and the activity log are not saved until this is fixed (GET /healthz shows it)")
            } else {
                securityLog.info("the state database can be written again (\(h.failedWrites) writes failed)")
            }
        }
        let gate = SecurityGate(store: store, log: securityLog, plugins: config.security.scanners,
                                logCallArguments: config.logCallArguments)
        plugins.gate = SecurityToolGate(gate: gate)
        plugins.restExtensions = [SecurityRESTExtension(gate: gate)]
        plugins.stateStore = store
        // Secrets: `${secret:NAME}` references resolve from the encrypted store at launch; servers
        // using a secret restart when it changes (CLI or REST).
        let secrets = SecretStore(store: store, dataDir: dataDir)
        SecretResolver.install(secrets)
        plugins.beforeStart.append { runtime in
            let manager = runtime.manager
            Task { await SecretWatch.run(store: secrets, manager: manager, logger: securityLog) }
        }
        return plugins
    }
}

import Foundation
import Gateway
import Isolation
import Logging
import ProxyCore
import MCPSecurity

/// Wires the optional layers (container lifecycle, security gate) into the runtime.
enum Plugins {
    static func make(dataDir: String, config: ProxyConfig, logs: LogFiles) throws -> ProxyRuntime.Plugins {
        var plugins = ProxyRuntime.Plugins()
        // Isolation backends (none, sandbox, docker on its engines); each cleans up what a proxy
        // that died left behind (containers of this instance or of a dead owner) before any
        // server starts.
        let backends = plugins.backends
        plugins.beforeStart.append { runtime in
            let logger = runtime.logger
            var removed = 0
            for backend in backends.all {
                removed += await backend.cleanupOrphans(instanceID: runtime.instanceID, config: config,
                                                        environment: ProcessSettings.current.environment,
                                                        log: { logger.info("container cleanup: \($0)") })
            }
            if removed > 0 { logger.warning("removed \(removed) orphaned mcpproxy container(s) left by a proxy that is gone") }
        }
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
                                runner: DockerScannerRunner(engine: ContainerEngines.named(config.dockerIsolation.engine) ?? .docker),
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

import Logging
import NIOConcurrencyHelpers
import ProxyCore

/// The one owner of the running config. Every change goes through it: the file watcher, and
/// every write the gateway makes itself (REST, the CLI through REST, `upstream_servers` over
/// MCP, approvals). It loads the file once and publishes the immutable snapshot to every
/// component (MCP handler, HTTP front door, server manager) in one step, in the order changes
/// were made, so no component runs on a config the others have not seen yet.
public actor ConfigStore {
    public nonisolated let path: String
    /// The snapshot every component was last given.
    public private(set) var current: ProxyConfig
    /// The file's stamp when `current` was read: the watcher reloads only when it differs, so a
    /// write the gateway made (and published) itself is not applied a second time.
    private var stamp: String?
    private nonisolated let subscribers = NIOLockedValueBox<[@Sendable (ProxyConfig) async -> Void]>([])
    /// Publications run one at a time in the order they were made (a subscriber awaits server
    /// stops; two interleaved ones could leave a component on an older snapshot).
    private var tail: Task<Void, Never>?
    private let log: Logger

    /// Loads `path`: the store and its first snapshot (the caller reports `warnings`).
    public static func load(path: String, logger: Logger) throws
        -> (store: ConfigStore, config: ProxyConfig, warnings: [ConfigDiagnostic]) {
        let stamp = ConfigFile.stamp(path: path)
        let loaded = try ConfigLoader.load(path: path)
        return (ConfigStore(path: path, config: loaded.config, stamp: stamp, logger: logger), loaded.config, loaded.warnings)
    }

    init(path: String, config: ProxyConfig, stamp: String?, logger: Logger) {
        self.path = path
        self.current = config
        self.stamp = stamp
        self.log = logger
    }

    /// `body` receives every snapshot published after this call, in order.
    public nonisolated func subscribe(_ body: @escaping @Sendable (ProxyConfig) async -> Void) {
        subscribers.withLockedValue { $0.append(body) }
    }

    /// Reads the file and publishes it; returns once every component has it. An invalid file
    /// throws and the running config stays.
    public func reload() async throws {
        // The stamp is taken before reading, so an edit made while loading is seen next time.
        let before = ConfigFile.stamp(path: path)
        let loaded = try ConfigLoader.load(path: path)
        for w in loaded.warnings { log.warning("\(path): \(w.path): \(w.message)") }
        stamp = before
        await publish(loaded.config)
    }

    /// For the watcher: reloads when the file changed since it was last read.
    public func reloadIfChanged() async {
        guard let now = ConfigFile.stamp(path: path), now != stamp else { return }
        do {
            log.info("config changed; applying")
            try await reload()
        } catch {
            stamp = now  // reported once per edit, not every poll
            log.error("config reload failed; keeping the running config: \(error)")
        }
    }

    private func publish(_ config: ProxyConfig) async {
        current = config
        let previous = tail
        let receivers = subscribers.withLockedValue { $0 }
        let task = Task {
            await previous?.value
            for receive in receivers { await receive(config) }
        }
        tail = task
        await task.value
    }
}

import Foundation
import Gateway

/// Wires the optional layers (container lifecycle, security gate) into the runtime.
enum Plugins {
    static func make() -> ProxyRuntime.Plugins {
        var plugins = ProxyRuntime.Plugins()
        // Docker isolation: container lifecycle around stdio launches, orphan cleanup at start.
        plugins.containerHooks = DockerContainerHooks()
        plugins.beforeStart.append(DockerContainerHooks.cleanupAtStart)
        return plugins
    }
}

import Foundation
import Gateway

/// Wires the optional layers (container lifecycle, security gate) into the runtime.
enum Plugins {
    static func make() -> ProxyRuntime.Plugins {
        ProxyRuntime.Plugins()
    }
}

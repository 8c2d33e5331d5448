import Foundation

/// `security`: settings of the security layer.
public struct SecurityConfig: Sendable, Equatable {
    /// Docker-based scanner plugins, run hardened (no network, read-only, no capabilities) only for
    /// servers in isolation mode docker; skipped (scan status "degraded") otherwise.
    public var scanners: [ScannerPluginConfig] = []

    public init() {}
}

/// One Docker-based scanner plugin (`security.scanners[]`): reads `{"server", "tools"}` JSON on
/// stdin, writes `{"findings": [...]}` JSON on stdout. See docs/security.md.
public struct ScannerPluginConfig: Sendable, Equatable {
    public var name: String
    /// A locally available image.
    public var image: String
    public var args: [String] = []
    /// Seconds before the plugin run is abandoned.
    public var timeout: Double = 60

    public init(name: String, image: String, args: [String] = [], timeout: Double = 60) {
        self.name = name
        self.image = image
        self.args = args
        self.timeout = timeout
    }
}

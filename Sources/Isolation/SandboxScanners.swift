import Foundation
import ProxyCore

/// Which scanner runtimes an isolation mode allows (seed 001, "Scanner behaviour under each mode").
public enum IsolationScanners {
    /// Why Docker-based scanner plugins are skipped for a server under `mode`, or nil when they run
    /// (mode docker). A scan with only skipped scanners reports status "degraded", never a clean result.
    public static func dockerScannerSkipReason(for mode: IsolationMode) -> String? {
        switch mode {
        case .docker:
            return nil
        case .sandbox:
            return "isolation mode sandbox runs no Docker, so Docker-based scanners are skipped (scan coverage is degraded); use isolation mode docker on a host with a working Docker daemon for the full scanner set (see MCPX_DOCKER_SNAP_APPARMOR for snap-docker hosts)"
        case .none:
            return "isolation mode none runs no Docker, so Docker-based scanners are skipped (scan coverage is degraded); use isolation mode docker on a host with a working Docker daemon for the full scanner set (see MCPX_DOCKER_SNAP_APPARMOR for snap-docker hosts)"
        }
    }
}

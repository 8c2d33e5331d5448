import Foundation

/// The OCI runtime a container engine starts containers with (`isolation.oci_runtime`): runc
/// (the engine's default) or runsc (gVisor, a user-space kernel between the server and the
/// host). Each runtime lives in its own file under `Container/Runtimes/`, listed once in
/// `OCIRuntimes.all`.
public struct OCIRuntime: Sendable, Equatable {
    /// The config name: "runc", "runsc".
    public var name: String
    /// The `--runtime` value the planner adds to `run` (nil: the engine's default runtime). The
    /// engine must know the name: docker from `runtimes` in /etc/docker/daemon.json, podman from
    /// `[engine.runtimes]` in containers.conf (both set up by scripts/setup.sh for runsc).
    public var runtimeOption: String?
    /// Entries added to the plan's enforcement report.
    public var enforcement: [String: String]
    /// Network modes the runtime is known to run with here (nil: any). Others are refused at
    /// planning with `networkLimit` as the reason, instead of failing inside the engine.
    public var supportedNetworks: Set<String>?
    /// Why other networks are refused (docs/docker-isolation.md, "gVisor").
    public var networkLimit: String

    public init(name: String, runtimeOption: String?, enforcement: [String: String],
                supportedNetworks: Set<String>? = nil, networkLimit: String = "") {
        self.name = name
        self.runtimeOption = runtimeOption
        self.enforcement = enforcement
        self.supportedNetworks = supportedNetworks
        self.networkLimit = networkLimit
    }
}

/// The OCI runtimes mode docker can select. Adding one: a file under `Container/Runtimes/`
/// defining the value, and one entry here.
public enum OCIRuntimes {
    public static let all: [OCIRuntime] = [
        .runc,
        .runsc,
    ]

    /// The runtime named `name`, or nil.
    public static func named(_ name: String) -> OCIRuntime? { all.first { $0.name == name } }

    /// The default runtime.
    public static let defaultName = "runc"
}

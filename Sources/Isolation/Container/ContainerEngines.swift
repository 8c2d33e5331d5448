import Foundation

/// The container engines mode docker can use (`isolation.engine`). Adding one: a file under
/// `Container/Engines/` defining the value, and one entry here.
public enum ContainerEngines {
    public static let all: [ContainerEngine] = [
        .docker,
        .podman,
    ]

    /// The engine named `name`, or nil.
    public static func named(_ name: String) -> ContainerEngine? { all.first { $0.name == name } }

    /// The default engine.
    public static let defaultName = "docker"
}

import Foundation

extension OCIRuntime {
    /// The engine's default runtime (runc, or crun under some podman installs): namespaces,
    /// cgroups, seccomp and capabilities of the host kernel. The plan adds no `--runtime`.
    public static let runc = OCIRuntime(name: "runc", runtimeOption: nil, enforcement: ["oci_runtime": "runc"])
}

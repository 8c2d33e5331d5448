import Foundation

extension OCIRuntime {
    /// gVisor's runsc: the server's system calls are served by gVisor's user-space kernel (the
    /// Sentry), not the host kernel, so a kernel bug reachable from the container is not a host
    /// bug. Debian's runsc (2022-12 build) uses the ptrace platform by default (no KVM needed).
    ///
    /// Network: in these machines runsc starts only without a network (see
    /// docs/docker-isolation.md, "gVisor"), so plans with another network are refused up front
    /// with that reason instead of failing inside the engine.
    public static let runsc = OCIRuntime(
        name: "runsc", runtimeOption: "runsc",
        enforcement: ["oci_runtime": "runsc", "kernel": "gVisor user-space kernel (runsc)"],
        supportedNetworks: ["none"],
        networkLimit: "gVisor (runsc) runs here only with network_mode \"none\" (docs/docker-isolation.md, \"gVisor\")")
}

import Foundation

extension ContainerEngine {
    /// Podman (Debian's 4.3): daemonless, rootful as root, rootless otherwise. It reads the same
    /// `docker run` options the planner writes. Two differences the plan covers: it applies the
    /// host's rlimits unless `--ulimit` is given (the hardened plan always sets nofile and nproc),
    /// and its events carry the kind of event in `Status`. Being daemonless, its client starts the
/// container itself (conmon, runc), so it runs in the host's PID namespace.
    public static let podman = ContainerEngine(
        name: "podman", daemonName: "Podman service", installHint: "Debian: apt-get install podman",
        clientVariables: ["PATH", "HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "CONTAINER_HOST",
                          "CONTAINER_CONNECTION", "CONTAINER_SSHKEY", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF",
                          "CONTAINERS_REGISTRIES_CONF", "DBUS_SESSION_BUS_ADDRESS"],
        endpointVariables: ["CONTAINER_HOST", "CONTAINER_CONNECTION"],
        // podman 4.3 records no "oom" event (its events for an OOM-killed container are "died",
        // as for any death) and --rm removes the container with its State.OOMKilled, so an exit
        // 137 is diagnosed as "most likely out of memory" rather than from an event.
        oomEventQuery: nil,
        clientNeedsHostPIDs: true,
        limitsCheck: LimitsCheck(arguments: ["info", "--format", "{{.Host.Security.Rootless}} {{.Host.CgroupsVersion}}"],
                                 problem: podmanLimitsProblem))

    /// Rootless podman on cgroups v1 runs containers without `--memory`, `--cpus` and
    /// `--pids-limit` ("Resource limits are not supported and ignored on cgroups V1 rootless
    /// systems", a warning on stderr only), so a plan's limits would not hold: refused.
    /// `info` is `podman info --format '{{.Host.Security.Rootless}} {{.Host.CgroupsVersion}}'`.
    public static func podmanLimitsProblem(_ info: String) -> String? {
        let fields = info.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { $0.lowercased() }
        guard fields.count >= 2, fields[0] == "true", fields[1] == "v1" else { return nil }
        return "rootless podman on a cgroups v1 host ignores --memory, --cpus and --pids-limit, so the container's limits would not hold; run the proxy as root (rootful podman), use engine docker, or boot the host with cgroups v2"
    }
}

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
        clientNeedsHostPIDs: true)
}

import Foundation

/// Isolation modes for stdio servers (seed 001).
public enum IsolationMode: String, Sendable, Codable, CaseIterable, Equatable {
    case docker, sandbox, none
}

/// `docker_isolation`: the global isolation settings (the key name is historical: `mode` selects
/// any of the three modes).
public struct DockerIsolationConfig: Sendable, Equatable {
    public var mode: IsolationMode? = nil
    /// Legacy switch: true → docker, false → none (only when `mode` is absent).
    public var enabled: Bool? = nil
    public var memoryLimit: String = "512m"
    public var cpuLimit: String = "1.0"
    /// Container start through `initialize`, seconds.
    public var timeout: Double = 30
    public var networkMode: String = "bridge"
    public var registry: String = "docker.io"
    public var defaultImages: [String: String] = DockerIsolationConfig.seedImages
    public var extraArgs: [String] = []
    /// Container user (uid:gid); non-root by default.
    public var user: String = "65534:65534"
    public var pidsLimit: Int = 256
    /// Size of the `/tmp` tmpfs in the read-only container.
    public var tmpfsSize: String = "64m"
    /// `engine`: the container engine whose CLI runs the containers, "docker" or "podman"
    /// (names checked against the Isolation layer's engine registry when a server is planned).
    public var engine: String = "docker"
    /// `oci_runtime`: the OCI runtime the engine starts containers with, "runc" (the engine's
    /// default) or "runsc" (gVisor).
    public var ociRuntime: String = "runc"

    public init() {}

    /// The runtime-to-image table of seed 000.
    public static let seedImages: [String: String] = [
        "python": "python:3.11", "python3": "python:3.11", "uvx": "python:3.11",
        "pip": "python:3.11", "pipx": "python:3.11",
        "node": "node:20", "npm": "node:20", "npx": "node:20", "yarn": "node:20",
        "go": "golang:1.21-alpine", "cargo": "rust:1.75-slim", "rustc": "rust:1.75-slim",
        "ruby": "ruby:3.2-alpine", "gem": "ruby:3.2-alpine",
        "php": "php:8.2-cli-alpine", "composer": "php:8.2-cli-alpine",
        "binary": "alpine:3.18", "sh": "alpine:3.18", "bash": "alpine:3.18",
    ]
}

/// `sandbox`: global settings of the native sandbox mode.
public struct SandboxGlobalConfig: Sendable, Equatable {
    /// Start servers even when the kernel cannot enforce the whole policy (logged at warn).
    public var allowDegraded: Bool = false
    public var readPaths: [String] = []
    public var writePaths: [String] = []
    /// Address-space cap, e.g. "4g" (the default leaves room for runtimes that reserve a lot).
    public var memoryLimit: String? = nil
    public var maxOpenFiles: Int = 1024
    public var maxProcesses: Int = 256
    /// CPU seconds (RLIMIT_CPU); nil = no cap.
    public var cpuSeconds: Int? = nil
    /// Numeric "uid:gid" every sandboxed server drops to when the proxy runs as root (per-server
    /// `isolation.user` overrides it). nil (the default): each server gets its own uid from
    /// `uidRange`, so RLIMIT_NPROC and signals are per server.
    public var user: String? = nil
    /// "FIRST-LAST": the uids (gid = uid) handed to sandboxed servers, one per server, when the
    /// proxy runs as root and no user is configured. The default lies above systemd's container
    /// ranges and below 2^31, away from login users and subordinate-uid ranges.
    public var uidRange: String = "1900000000-1900065535"
    /// Size of each server's private HOME and TMPDIR: a tmpfs of this size when root, else the
    /// per-file limit RLIMIT_FSIZE.
    public var homeSize: String = "512m"

    public init() {}
}

/// Per-server `isolation` block. Every field is optional: absent means "inherit".
public struct ServerIsolationConfig: Sendable, Equatable {
    public var mode: IsolationMode? = nil
    public var enabled: Bool? = nil
    // docker
    public var image: String? = nil
    public var memoryLimit: String? = nil
    public var cpuLimit: String? = nil
    public var networkMode: String? = nil
    public var workingDir: String? = nil
    public var extraArgs: [String]? = nil
    public var volumes: [String]? = nil
    public var user: String? = nil
    public var pidsLimit: Int? = nil
    /// Container engine for this server (overrides `docker_isolation.engine`).
    public var engine: String? = nil
    /// OCI runtime for this server (overrides `docker_isolation.oci_runtime`).
    public var ociRuntime: String? = nil
    /// Named, loudly-logged relaxations and opt-ins (e.g. "writable_rootfs", "privileged",
    /// "docker_socket", "host_network"). See docs/configuration.md.
    public var allow: [String] = []
    // sandbox
    public var readPaths: [String]? = nil
    public var writePaths: [String]? = nil
    public var allowTCPConnect: [Int]? = nil

    public init() {}
}

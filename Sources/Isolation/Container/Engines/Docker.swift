import Foundation

extension ContainerEngine {
    /// The Docker CLI, talking to dockerd through the user's context (`DOCKER_HOST`,
    /// `DOCKER_CONTEXT`, `docker context use`), exactly as in their shell.
    public static let docker = ContainerEngine(
        name: "docker", daemonName: "Docker daemon", installHint: "Debian: apt-get install docker.io",
        clientVariables: EnvironmentPolicy.dockerClient,
        endpointVariables: ["DOCKER_HOST", "DOCKER_CONTEXT"],
        oomEventName: "oom",
        oomEventQuery: { id, until in
            ["events", "--since", "1970-01-01T00:00:00", "--until", until, "--filter", "container=\(id)", "--format", "{{.Action}}"]
        })
}

import Foundation
import ProxyCore
#if canImport(Glibc)
import Glibc
#endif

/// The doing side of docker isolation: image preparation, container id tracking, the stop
/// ladder, exit diagnosis and orphan cleanup, all through the `docker` CLI (so the user's
/// Docker context, `DOCKER_HOST` and `DOCKER_CONTEXT` apply exactly as in their shell).
///
/// None of this is on the request path: it runs around a server's start and stop. The decisions
/// (error classification, diagnosis, orphan selection) are pure functions below, unit-tested
/// on their own; the functions that run docker stay thin.
public enum ContainerLifecycle {
    /// Longest time the stop ladder may take (seed 001: 30 s).
    public static let stopBudget: Double = 30

    // MARK: - API for the Upstream layer

    /// Before the startup timer starts: make sure the image exists locally; pull it if not,
    /// reporting progress lines via `log`. Also removes a stale cid file (docker refuses to
    /// start when it exists) and writes the plan's files (0600). Throws `ProxyError` with a
    /// clear message: docker CLI missing or daemon unreachable (`.unavailable`), image not
    /// found or pull failed (`.notFound`).
    public static func prepare(_ plan: LaunchPlan, log: @escaping @Sendable (String) -> Void) async throws {
        try await prepare(plan, pullTimeout: 900, log: log)
    }

    /// `prepare` with an explicit bound on the pull.
    public static func prepare(_ plan: LaunchPlan, pullTimeout: Double,
                               log: @escaping @Sendable (String) -> Void) async throws {
        guard let container = plan.container else { return }
        let server = plan.container?.labels[DockerPlanner.Label.server] ?? container.name
        let dir = (container.cidFile as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        try? FileManager.default.removeItem(atPath: container.cidFile)
        try writeFiles(plan)

        let env = clientEnvironment(plan)
        let docker = try dockerExecutable(env, server: server)
        let inspect = await run(docker, ["image", "inspect", "--format", "{{.Id}}", container.image], environment: env, timeout: 30)
        if inspect.status == 0 {
            log("image \(container.image) is present locally (\(inspect.stdout.trimmingCharacters(in: .whitespacesAndNewlines).prefix(19)))")
            return
        }
        if inspect.timedOut {
            throw ProxyError(.unavailable, "server \"\(server)\": the Docker engine did not answer within 30 s (\(contextDescription(env))); check that dockerd is running and responsive")
        }
        if classify(stderr: inspect.stderr) == .daemonUnreachable {
            throw daemonError(server: server, env: env, stderr: inspect.stderr)
        }
        log("image \(container.image) is not present locally; pulling it before the startup timer starts")
        let pull = await run(docker, ["pull", container.image], environment: env, timeout: pullTimeout) { line in
            log("pull \(container.image): \(line)")
        }
        if pull.status == 0 {
            log("image \(container.image) pulled")
            return
        }
        if classify(stderr: pull.stderr) == .daemonUnreachable {
            throw daemonError(server: server, env: env, stderr: pull.stderr)
        }
        let why = pull.timedOut ? "the pull did not finish within \(Int(pullTimeout)) s" : lastLine(pull.stderr) ?? "docker pull exited with status \(pull.status)"
        throw ProxyError(.notFound, "server \"\(server)\": image \"\(container.image)\" is not present locally and could not be pulled: \(why). Pull or build it (docker pull \(container.image)), or set isolation.image to an image that exists locally")
    }

    /// After spawn: the container id from the cid file (polls up to `timeout` seconds), nil if
    /// none. Once the id is known the docker client has read its env file, which is removed so
    /// no secret stays on disk while the server runs.
    public static func containerID(_ plan: LaunchPlan, timeout: Double) async -> String? {
        guard let container = plan.container else { return nil }
        let deadline = Date().addingTimeInterval(max(0, timeout))
        while true {
            if let text = try? String(contentsOfFile: container.cidFile, encoding: .utf8) {
                let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !id.isEmpty {
                    removeFiles(plan)
                    return id
                }
            }
            if Date() >= deadline { return nil }
            try? await Task.sleep(nanoseconds: 25_000_000)
        }
    }

    /// Stop ladder: `docker stop -t grace` (SIGTERM, then the engine's SIGKILL after `grace`),
    /// then `docker kill`, then `docker rm -f`, and a wait until the engine no longer knows the
    /// container; the whole thing bounded by 30 s. Removes the cid file and the plan's files.
    public static func stop(_ plan: LaunchPlan, containerID: String?, grace: Double) async {
        guard let container = plan.container else { return }
        defer {
            try? FileManager.default.removeItem(atPath: container.cidFile)
            removeFiles(plan)
        }
        let env = clientEnvironment(plan)
        guard let docker = resolveExecutable("docker", path: env["PATH"]) else { return }
        let start = Date()
        func remaining() -> Double { max(1, stopBudget - Date().timeIntervalSince(start)) }
        let target = containerID ?? container.name
        let g = Int(min(max(grace, 0), stopBudget - 10).rounded(.up))
        let stopped = await run(docker, ["stop", "-t", String(g), target], environment: env, timeout: Double(g) + 5)
        if stopped.timedOut || (stopped.status != 0 && classify(stderr: stopped.stderr) != .noSuchContainer) {
            _ = await run(docker, ["kill", target], environment: env, timeout: min(5, remaining()))
        }
        // --rm removes the container once it stopped; rm -f covers an engine that did not.
        _ = await run(docker, ["rm", "-f", target], environment: env, timeout: min(5, remaining()))
        while Date().timeIntervalSince(start) < stopBudget {
            let r = await run(docker, ["inspect", "--format", "{{.State.Status}}", target], environment: env, timeout: min(5, remaining()))
            if r.status != 0 { break }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    /// After the docker client exited: a clear diagnosis (OOM / exit 137, image missing, daemon
    /// unreachable, not a TTY, command missing in the image, read-only file system), or nil.
    /// `stderrTail` is the server's last stderr lines. The OOM fact comes from the engine's
    /// event log (the container itself is gone because of `--rm`).
    public static func diagnose(_ plan: LaunchPlan, containerID: String?, exitStatus: Int32,
                                stderrTail: [String]) async -> String? {
        var oom: Bool? = nil
        if let id = containerID, plan.container != nil {
            let env = clientEnvironment(plan)
            if let docker = resolveExecutable("docker", path: env["PATH"]) {
                let until = String(format: "%.3f", Date().timeIntervalSince1970 + 0.5)
                let r = await run(docker, ["events", "--since", "1970-01-01T00:00:00", "--until", until,
                                           "--filter", "container=\(id)", "--format", "{{.Action}}"],
                                  environment: env, timeout: 5)
                if r.status == 0 { oom = r.stdout.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "oom" } }
            }
        }
        return diagnosis(server: plan.container?.labels[DockerPlanner.Label.server] ?? "?",
                         image: plan.container?.image ?? "?",
                         memoryLimit: plan.enforcement["memory"] ?? "?",
                         command: commandInContainer(plan),
                         exitStatus: exitStatus, stderrTail: stderrTail, oomKilled: oom)
    }

    /// Remove containers labelled mcpproxy.managed=true whose instance is `instanceID` or whose
    /// owner pid is dead on this host. Returns the removed container ids. Never by name prefix,
    /// never another live proxy's containers. Call once at startup, before the first launch.
    public static func cleanupOrphans(instanceID: String, environment: [String: String],
                                      log: @escaping @Sendable (String) -> Void) async -> [String] {
        await cleanupOrphans(instanceID: instanceID, environment: environment, dryRun: false, log: log).removed
    }

    /// What `cleanupOrphans` saw and did.
    public struct CleanupReport: Sendable {
        /// The verdict on every managed container seen.
        public var decisions: [OrphanDecision] = []
        /// Ids of the containers actually removed.
        public var removed: [String] = []
        /// Why nothing could be inspected (no docker CLI, daemon unreachable), if so.
        public var problem: String? = nil
    }

    /// `cleanupOrphans` with a dry-run switch and the full report (for `mcpproxy containers`).
    /// `instanceID` may be empty (the manual command has no instance): then only dead owners'
    /// containers are removed.
    public static func cleanupOrphans(instanceID: String, environment: [String: String], dryRun: Bool,
                                      owner: ContainerOwner = .probe(pid: getpid()),
                                      isAlive: @escaping @Sendable (Int32, String?) -> Bool = { ContainerLifecycle.processIsAlive($0, $1) },
                                      log: @escaping @Sendable (String) -> Void) async -> CleanupReport {
        var report = CleanupReport()
        let env = EnvironmentPolicy.filtered(environment, allowed: EnvironmentPolicy.dockerClient)
        guard let docker = resolveExecutable("docker", path: env["PATH"]) else {
            report.problem = "docker CLI not found on PATH; no container cleanup"
            log(report.problem!)
            return report
        }
        let ps = await run(docker, ["ps", "-a", "-q", "--no-trunc", "--filter", "label=\(DockerPlanner.Label.managed)=true"],
                           environment: env, timeout: 30)
        guard ps.status == 0 else {
            report.problem = "container cleanup skipped: \(lastLine(ps.stderr) ?? "docker ps failed") (\(contextDescription(env)))"
            log(report.problem!)
            return report
        }
        let ids = ps.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if ids.isEmpty { return report }
        let inspect = await run(docker, ["inspect", "--format", "{{.Id}}\t{{json .Config.Labels}}"] + ids,
                                environment: env, timeout: 30)
        // A container can vanish between ps and inspect: inspect then fails for it but still
        // prints the others.
        let observed = parseInspectLabels(inspect.stdout)
        report.decisions = selectOrphans(observed, instanceID: instanceID, host: owner.host,
                                         bootID: owner.bootID, isAlive: isAlive)
        let doomed = report.decisions.filter(\.remove)
        for d in report.decisions {
            log("\(d.remove ? (dryRun ? "would remove" : "removing") : "keeping") container \(d.id.prefix(12)) (server \(d.server ?? "?")): \(d.reason)")
        }
        if dryRun || doomed.isEmpty { return report }
        let rm = await run(docker, ["rm", "-f"] + doomed.map(\.id), environment: env, timeout: 60)
        let removedOut = Set(rm.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        report.removed = doomed.map(\.id).filter { id in removedOut.contains { !$0.isEmpty && id.hasPrefix($0) } }
        if rm.status != 0 { log("docker rm -f reported: \(lastLine(rm.stderr) ?? "status \(rm.status)")") }
        return report
    }

    // MARK: - Pure decisions

    /// What a docker CLI error message means.
    public enum DockerErrorKind: String, Sendable, Equatable {
        case daemonUnreachable, imageMissing, noSuchContainer, notATTY, commandNotFound, permissionDenied
    }

    /// Classifies docker CLI stderr text; nil when it matches nothing known.
    public static func classify(stderr: String) -> DockerErrorKind? {
        let t = stderr.lowercased()
        if t.contains("cannot connect to the docker daemon") || t.contains("is the docker daemon running")
            || t.contains("error during connect") || t.contains("docker.sock: connect: permission denied")
            || (t.contains("context") && t.contains("does not exist")) {
            return .daemonUnreachable
        }
        if t.contains("input device is not a tty") || t.contains("not a tty") { return .notATTY }
        if t.contains("unable to find image") || t.contains("pull access denied") || t.contains("manifest unknown")
            || t.contains("repository does not exist") || t.contains("no such image") || t.contains("manifest for ") && t.contains("not found") {
            return .imageMissing
        }
        if t.contains("no such container") || t.contains("no such object") { return .noSuchContainer }
        if t.contains("executable file not found") || t.contains("no such file or directory") && t.contains("exec") {
            return .commandNotFound
        }
        if t.contains("permission denied") && t.contains("exec") { return .permissionDenied }
        return nil
    }

    /// The diagnosis of a docker client that exited with `exitStatus`, from its stderr tail and
    /// whether the engine reported an OOM kill (nil: unknown). Nil when nothing specific applies
    /// (a plain exit status is reported by the caller).
    public static func diagnosis(server: String, image: String, memoryLimit: String, command: String,
                                 exitStatus: Int32, stderrTail: [String], oomKilled: Bool?) -> String? {
        let text = stderrTail.joined(separator: "\n")
        let lower = text.lowercased()
        if lower.contains("docker-init") && (lower.contains("not found") || lower.contains("no such file")) {
            return "server \"\(server)\": the Docker engine has no docker-init, which --init needs (\(lastLine(text) ?? "")); install it on the engine host (Debian: docker.io ships it; or tini) or add \"no_init\" to isolation.allow"
        }
        if oomKilled == true {
            return "server \"\(server)\": the container was killed for running out of memory (OOMKilled, exit \(exitStatus)); its memory limit is \(memoryLimit): raise memory_limit (isolation.memory_limit for this server, or docker_isolation.memory_limit)"
        }
        switch classify(stderr: text) {
        case .daemonUnreachable:
            return "server \"\(server)\": the Docker daemon is unreachable (\(lastLine(text) ?? "")); start Docker, or check DOCKER_HOST / DOCKER_CONTEXT / `docker context show`"
        case .notATTY:
            return "server \"\(server)\": \"the input device is not a TTY\": a docker command is being wrapped in docker again, or extra_args ask for -t; run docker-based servers with isolation mode none (command \"docker\" is skipped automatically) and never pass -t"
        case .imageMissing:
            return "server \"\(server)\": image \"\(image)\" was not found (\(lastLine(text) ?? "")); pull or build it, or set isolation.image to an image that exists"
        case .commandNotFound where exitStatus == 127 || exitStatus == 126 || exitStatus == 125:
            return "server \"\(server)\": command \"\(command)\" was not found in image \"\(image)\"; set isolation.image to an image that contains it, or fix the command"
        case .permissionDenied where exitStatus == 126:
            return "server \"\(server)\": command \"\(command)\" in image \"\(image)\" cannot be executed by the container user (permission denied); fix its permissions or set isolation.user"
        default:
            break
        }
        if lower.contains("read-only file system") {
            return "server \"\(server)\": it tried to write to the read-only container file system (\(lastLine(text) ?? "")); write under /tmp, mount a volume with :rw, or add \"writable_rootfs\" to isolation.allow"
        }
        switch exitStatus {
        case 137:
            if oomKilled == false {
                return "server \"\(server)\": the container was killed with SIGKILL (exit 137), not by the OOM killer: something ran docker kill or the engine stopped it"
            }
            return "server \"\(server)\": the container was killed with SIGKILL (exit 137), most likely for running out of memory (limit \(memoryLimit)): raise memory_limit"
        case 125:
            return "server \"\(server)\": docker could not create or start the container: \(lastLine(text) ?? "docker run failed (exit 125)")"
        case 127:
            return "server \"\(server)\": command \"\(command)\" was not found in image \"\(image)\" (exit 127); set isolation.image to an image that contains it"
        case 126:
            return "server \"\(server)\": command \"\(command)\" in image \"\(image)\" could not be executed (exit 126)"
        default:
            return nil
        }
    }

    /// A container seen by cleanup: its id and labels.
    public struct ObservedContainer: Sendable, Equatable {
        /// Full container id.
        public var id: String
        /// All labels of the container.
        public var labels: [String: String]
        /// A container as seen by `docker inspect`.
        public init(id: String, labels: [String: String]) {
            self.id = id
            self.labels = labels
        }
    }

    /// Cleanup's verdict on one container.
    public struct OrphanDecision: Sendable, Equatable {
        /// Full container id.
        public var id: String
        /// The `mcpproxy.server` label, if any.
        public var server: String?
        /// True when the container is an orphan to remove.
        public var remove: Bool
        /// Why, in words for the log.
        public var reason: String
    }

    /// Decides which managed containers are orphans: those of `instanceID` (a previous run of
    /// this proxy instance), and those whose owner ran on this host and is dead (a different
    /// boot, a pid that no longer exists, or a pid reused by another process). Containers of
    /// another host, or without owner labels, are kept: nothing proves their proxy is gone.
    public static func selectOrphans(_ containers: [ObservedContainer], instanceID: String, host: String,
                                     bootID: String, isAlive: (Int32, String?) -> Bool) -> [OrphanDecision] {
        containers.map { c -> OrphanDecision in
            let l = c.labels
            let server = l[DockerPlanner.Label.server]
            func decide(_ remove: Bool, _ reason: String) -> OrphanDecision {
                OrphanDecision(id: c.id, server: server, remove: remove, reason: reason)
            }
            guard l[DockerPlanner.Label.managed] == "true" else { return decide(false, "not labelled \(DockerPlanner.Label.managed)=true") }
            if !instanceID.isEmpty, l[DockerPlanner.Label.instance] == instanceID {
                return decide(true, "it belongs to this proxy instance (\(instanceID)), left from an earlier run")
            }
            guard let pidText = l[DockerPlanner.Label.ownerPID], let pid = Int32(pidText),
                  let ownerHost = l[DockerPlanner.Label.ownerHost], let ownerBoot = l[DockerPlanner.Label.ownerBoot] else {
                return decide(false, "it has no owner labels, so whether its proxy is alive cannot be told; remove it by hand if it is stale")
            }
            if ownerHost != host {
                return decide(false, "its proxy runs on host \"\(ownerHost)\", not here")
            }
            if ownerBoot != bootID {
                return decide(true, "its proxy (pid \(pid)) ran before this machine's last boot")
            }
            if !isAlive(pid, l[DockerPlanner.Label.ownerStart]) {
                return decide(true, "its proxy (pid \(pid)) is no longer running")
            }
            return decide(false, "its proxy (pid \(pid), instance \(l[DockerPlanner.Label.instance] ?? "?")) is alive")
        }
    }

    /// Parses `docker inspect --format '{{.Id}}\t{{json .Config.Labels}}'` output.
    public static func parseInspectLabels(_ text: String) -> [ObservedContainer] {
        text.split(separator: "\n").compactMap { line -> ObservedContainer? in
            guard let tab = line.firstIndex(of: "\t") else { return nil }
            let id = String(line[..<tab]).trimmingCharacters(in: .whitespaces)
            let json = line[line.index(after: tab)...]
            let labels = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: String] ?? [:]
            return id.isEmpty ? nil : ObservedContainer(id: id, labels: labels)
        }
    }

    /// True when process `pid` exists and, if `startTime` is given, started at that time (so a
    /// reused pid does not count as the owner).
    public static func processIsAlive(_ pid: Int32, _ startTime: String?) -> Bool {
        guard pid > 0 else { return false }
        if kill(pid, 0) != 0 && errno != EPERM { return false }
        if let startTime, let now = ContainerOwner.processStartTime(pid) { return now == startTime }
        return true
    }

    // MARK: - Running docker

    /// The result of one docker CLI run.
    public struct CommandResult: Sendable {
        /// Exit status (-1 when the program could not be started).
        public var status: Int32
        /// Everything written to stdout.
        public var stdout: String
        /// Everything written to stderr.
        public var stderr: String
        /// True when the run was killed for exceeding its timeout.
        public var timedOut: Bool
    }

    /// The docker client's environment of a plan: only the variables the client reads (the
    /// server's declared env stays out of lifecycle commands).
    public static func clientEnvironment(_ plan: LaunchPlan) -> [String: String] {
        EnvironmentPolicy.filtered(plan.environment, allowed: EnvironmentPolicy.dockerClient)
    }

    /// Runs `executable` with `arguments`, collecting stdout and stderr (each line of stdout
    /// also goes to `onLine`); kills it after `timeout` seconds.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String],
                           timeout: Double, onLine: (@Sendable (String) -> Void)? = nil) async -> CommandResult {
        await withCheckedContinuation { (cont: CheckedContinuation<CommandResult, Never>) in
            DispatchQueue.global().async {
                cont.resume(returning: runBlocking(executable, arguments, environment: environment, timeout: timeout, onLine: onLine))
            }
        }
    }

    final class Collector: @unchecked Sendable {
        let lock = NSLock()
        var data = Data()
        var partial = Data()
        let onLine: (@Sendable (String) -> Void)?
        init(onLine: (@Sendable (String) -> Void)?) { self.onLine = onLine }
        func append(_ chunk: Data) {
            lock.lock(); data.append(chunk); lock.unlock()
            guard let onLine else { return }
            partial.append(chunk)
            while let nl = partial.firstIndex(of: 0x0A) {
                let line = String(decoding: partial[partial.startIndex..<nl], as: UTF8.self)
                partial.removeSubrange(partial.startIndex...nl)
                if !line.trimmingCharacters(in: .whitespaces).isEmpty { onLine(line) }
            }
        }
        var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
    }

    final class Flag: @unchecked Sendable {
        let lock = NSLock()
        var value = false
        func set() { lock.lock(); value = true; lock.unlock() }
        var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    }

    static func runBlocking(_ executable: String, _ arguments: [String], environment: [String: String],
                            timeout: Double, onLine: (@Sendable (String) -> Void)?) -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            return CommandResult(status: -1, stdout: "", stderr: "cannot run \(executable): \(error)", timedOut: false)
        }
        let out = Collector(onLine: onLine), err = Collector(onLine: nil)
        let group = DispatchGroup()
        for (pipe, collector) in [(outPipe, out), (errPipe, err)] {
            group.enter()
            DispatchQueue.global().async {
                let handle = pipe.fileHandleForReading
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    collector.append(chunk)
                }
                group.leave()
            }
        }
        let timedOut = Flag()
        let pid = process.processIdentifier
        let timer = DispatchWorkItem {
            if process.isRunning {
                timedOut.set()
                kill(pid, SIGKILL)
            }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + max(0.1, timeout), execute: timer)
        process.waitUntilExit()
        timer.cancel()
        // A grandchild could hold the pipes open; do not wait for it for long.
        _ = group.wait(timeout: .now() + 2)
        return CommandResult(status: process.terminationStatus, stdout: out.text, stderr: err.text, timedOut: timedOut.isSet)
    }

    /// The absolute path of `name` on `path` (colon-separated), or nil.
    public static func resolveExecutable(_ name: String, path: String?) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for dir in (path ?? EnvironmentPolicy.defaultPath).split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    // MARK: - Helpers

    static func dockerExecutable(_ env: [String: String], server: String) throws -> String {
        guard let docker = resolveExecutable("docker", path: env["PATH"]) else {
            throw ProxyError(.unavailable, "server \"\(server)\": isolation mode docker needs the docker CLI, which is not on PATH (\(env["PATH"] ?? "")); install Docker (Debian: apt-get install docker.io) or choose isolation mode sandbox or none")
        }
        return docker
    }

    static func daemonError(server: String, env: [String: String], stderr: String) -> ProxyError {
        ProxyError(.unavailable, "server \"\(server)\": the Docker daemon is unreachable (\(contextDescription(env))): \(lastLine(stderr) ?? ""); start Docker, or point DOCKER_HOST / DOCKER_CONTEXT at a running engine")
    }

    static func contextDescription(_ env: [String: String]) -> String {
        if let host = env["DOCKER_HOST"] { return "DOCKER_HOST=\(host)" }
        if let ctx = env["DOCKER_CONTEXT"] { return "DOCKER_CONTEXT=\(ctx)" }
        return "the current docker context"
    }

    static func lastLine(_ text: String) -> String? {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.last { !$0.isEmpty }
    }

    /// The server command inside the container: the first argument after the image.
    static func commandInContainer(_ plan: LaunchPlan) -> String {
        guard let image = plan.container?.image, let i = plan.arguments.lastIndex(of: image), i + 1 < plan.arguments.count else { return "?" }
        return plan.arguments[i + 1]
    }

    static func writeFiles(_ plan: LaunchPlan) throws {
        for file in plan.files {
            let dir = (file.path as NSString).deletingLastPathComponent
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
            // Create with the final mode so the secret is never readable by others, not even briefly.
            let fd = open(file.path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode_t(file.mode))
            guard fd >= 0 else {
                throw ProxyError(.internalError, "cannot write \(file.path): \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            _ = fchmod(fd, mode_t(file.mode))
            let bytes = Array(file.contents.utf8)
            var written = 0
            while written < bytes.count {
                let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n <= 0 { throw ProxyError(.internalError, "cannot write \(file.path): \(String(cString: strerror(errno)))") }
                written += n
            }
        }
    }

    static func removeFiles(_ plan: LaunchPlan) {
        for file in plan.files { try? FileManager.default.removeItem(atPath: file.path) }
    }
}

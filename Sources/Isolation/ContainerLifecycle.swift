import Foundation
import ProxyCore
#if canImport(Glibc)
import Glibc
#endif

/// The doing side of container isolation: image preparation, container id tracking, the stop
/// ladder, exit diagnosis and orphan cleanup, all through the engine's CLI (`ContainerEngine`:
/// docker or podman), so the user's context and endpoint variables apply exactly as in their
/// shell.
///
/// None of this is on the request path: it runs around a server's start and stop. The decisions
/// (error classification, diagnosis, orphan selection) are pure functions below, unit-tested
/// on their own; the functions that run the engine stay thin.
public enum ContainerLifecycle {
    /// Longest time the stop ladder may take (seed 001: 30 s).
    public static let stopBudget: Double = 30

    /// The engine a plan was made for (`ContainerPlan.engine`); docker when it names none known.
    public static func engine(of plan: LaunchPlan) -> ContainerEngine {
        plan.container.flatMap { ContainerEngines.named($0.engine) } ?? .docker
    }

    // MARK: - API for the container backend

    /// Before the startup timer starts: make sure the image exists locally; pull it if not,
    /// reporting progress lines via `log`. Also removes a stale cid file (the engine refuses to
    /// start when it exists) and writes the plan's files (0600). Returns the plan with the
    /// engine CLI's absolute path as its executable (found by the trust rule of
    /// `ContainerEngine.trustedDirectories`). Throws `ProxyError` with a clear message: engine
    /// CLI missing or engine unreachable (`.unavailable`), image not found or pull failed
    /// (`.notFound`).
    @discardableResult
    public static func prepare(_ plan: LaunchPlan, engine: ContainerEngine? = nil, pullTimeout: Double = 900,
                               log: @escaping @Sendable (String) -> Void) async throws -> LaunchPlan {
        guard let container = plan.container else { return plan }
        let engine = engine ?? self.engine(of: plan)
        let server = container.labels[DockerPlanner.Label.server] ?? container.name
        let dir = (container.cidFile as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        try? FileManager.default.removeItem(atPath: container.cidFile)
        try PlannedFiles.write(plan)
        try plan.secrets?.write()

        let env = plan.environment
        let cli = try engine.requireExecutable(server: server)
        var prepared = plan
        prepared.executable = cli
        try await prepareWorkspace(container, engine: engine, env: env, server: server, log: log)
        if let check = engine.limitsCheck, geteuid() != 0 {
            let r = await engine.run(check.arguments, environment: env, timeout: 30)
            if r.status == 0, let problem = check.problem(r.stdout) {
                throw ProxyError(.unsupported, "server \"\(server)\": \(problem)")
            }
        }
        // A plan with the secret launcher also needs the image's entrypoint: same round trip.
        let format = plan.secrets == nil ? "{{.Id}}" : "{{.Id}}\t{{json .Config.Entrypoint}}"
        let inspect = await engine.run(["image", "inspect", "--format", format, container.image], environment: env, timeout: 30)
        if inspect.status == 0 {
            let fields = inspect.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\t", maxSplits: 1)
            log("image \(container.image) is present locally (\(fields.first?.prefix(19) ?? ""))")
            if plan.secrets != nil, fields.count == 2 {
                return keepingImageEntrypoint(prepared, entrypointJSON: String(fields[1]))
            }
            return await keepingImageEntrypoint(prepared, engine: engine)
        }
        if inspect.timedOut {
            throw ProxyError(.unavailable, "server \"\(server)\": the \(engine.daemonName) did not answer within 30 s (\(engine.endpointDescription(env))); check that it is running and responsive")
        }
        if ContainerEngine.classify(stderr: inspect.stderr) == .daemonUnreachable {
            throw engine.unreachable(server: server, env: env, stderr: inspect.stderr)
        }
        log("image \(container.image) is not present locally; pulling it before the startup timer starts")
        let pull = await engine.run(["pull", container.image], environment: env, timeout: pullTimeout) { line in
            log("pull \(container.image): \(line)")
        }
        if pull.status == 0 {
            log("image \(container.image) pulled")
            return await keepingImageEntrypoint(prepared, engine: engine)
        }
        if ContainerEngine.classify(stderr: pull.stderr) == .daemonUnreachable {
            throw engine.unreachable(server: server, env: env, stderr: pull.stderr)
        }
        let why = pull.timedOut ? "the pull did not finish within \(Int(pullTimeout)) s" : CommandRunner.lastLine(pull.stderr) ?? "\(engine.name) pull exited with status \(pull.status)"
        throw ProxyError(.notFound, "server \"\(server)\": image \"\(container.image)\" is not present locally and could not be pulled: \(why). Pull or build it (\(engine.name) pull \(container.image)), or set isolation.image to an image that exists locally")
    }

    /// A plan whose entrypoint is the secret launcher (`SecretDelivery`) runs the image's own
    /// entrypoint after it, so the command means what it means without secrets.
    static func keepingImageEntrypoint(_ plan: LaunchPlan, engine: ContainerEngine) async -> LaunchPlan {
        guard plan.secrets != nil, let image = plan.container?.image else { return plan }
        let r = await engine.run(["image", "inspect", "--format", "{{json .Config.Entrypoint}}", image], environment: plan.environment, timeout: 30)
        guard r.status == 0 else { return plan }
        return keepingImageEntrypoint(plan, entrypointJSON: r.stdout)
    }

    /// `plan` with the entrypoint from `image inspect`'s `{{json .Config.Entrypoint}}` (null or
    /// a list of words) placed after the launcher's `--`.
    static func keepingImageEntrypoint(_ plan: LaunchPlan, entrypointJSON: String) -> LaunchPlan {
        guard plan.secrets != nil, let image = plan.container?.image,
              let data = entrypointJSON.trimmingCharacters(in: .whitespacesAndNewlines).data(using: .utf8),
              let entrypoint = (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) as? [String] else { return plan }
        var out = plan
        out.arguments = SecretDelivery.withImageEntrypoint(plan.arguments, image: image, entrypoint: entrypoint)
        return out
    }

    /// A workspace instance's network (`--internal`: no route out, and no route to another
    /// workspace's network) and its volume (bind-backed by a host directory owned by the
    /// container user), each created once and labelled with the workspace.
    static func prepareWorkspace(_ c: ContainerPlan, engine: ContainerEngine, env: [String: String], server: String,
                                 log: @escaping @Sendable (String) -> Void) async throws {
        guard let ws = c.labels[DockerPlanner.Label.workspace] else { return }
        let labels = ["--label", "\(DockerPlanner.Label.managed)=true", "--label", "\(WorkspaceNames.label)=\(ws)"]
        if let net = c.workspaceNetwork {
            if await engine.run(["network", "inspect", net], environment: env, timeout: 30).status != 0 {
                let r = await engine.run(["network", "create", "--internal"] + labels + [net], environment: env, timeout: 30)
                if r.status == 0 { log("created internal workspace network \(net)") }
                else if await engine.run(["network", "inspect", net], environment: env, timeout: 30).status != 0 {
                    throw ProxyError(.unavailable, "server \"\(server)\": cannot create the workspace network \(net): \(CommandRunner.lastLine(r.stderr) ?? "status \(r.status)")")
                }
            }
        }
        if let vol = c.workspaceVolume, let dir = c.workspaceVolumeDir {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            if let owner = c.workspaceVolumeOwner {
                let parts = owner.split(separator: ":").map { UInt32($0) }
                if let uid = parts.first ?? nil, chown(dir, uid, parts.count > 1 ? (parts[1] ?? uid) : uid) != 0 {
                    // Not root: the daemon (root) reaches the directory whatever its parents'
                    // modes; the container's user needs the leaf writable.
                    chmod(dir, 0o777)
                }
            }
            if await engine.run(["volume", "inspect", vol], environment: env, timeout: 30).status != 0 {
                let r = await engine.run(["volume", "create", "--driver", "local", "--opt", "type=none", "--opt", "o=bind",
                                          "--opt", "device=\(dir)"] + labels + [vol], environment: env, timeout: 30)
                if r.status == 0 { log("created workspace volume \(vol) (\(dir))") }
                else if await engine.run(["volume", "inspect", vol], environment: env, timeout: 30).status != 0 {
                    throw ProxyError(.unavailable, "server \"\(server)\": cannot create the workspace volume \(vol): \(CommandRunner.lastLine(r.stderr) ?? "status \(r.status)")")
                }
            }
        }
    }

    /// Removes everything the engine holds for `workspace` (containers, volumes, networks, found
    /// by their `mcpproxy.workspace` label); returns what was removed, as "kind name" lines.
    public static func removeWorkspace(_ workspace: String, engine: ContainerEngine = .docker,
                                       environment env: [String: String]) async -> [String] {
        guard engine.executable() != nil else { return [] }
        let filter = ["--filter", "label=\(WorkspaceNames.label)=\(workspace)"]
        var removed: [String] = []
        let ps = await engine.run(["ps", "-a", "-q", "--no-trunc"] + filter, environment: env, timeout: 30)
        let ids = ps.stdout.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        if !ids.isEmpty, await engine.run(["rm", "-f"] + ids, environment: env, timeout: 60).status == 0 {
            removed += ids.map { "container \($0.prefix(12))" }
        }
        let vols = await engine.run(["volume", "ls", "-q"] + filter, environment: env, timeout: 30)
        for v in vols.stdout.split(separator: "\n").map(String.init) where !v.isEmpty {
            if await engine.run(["volume", "rm", "-f", v], environment: env, timeout: 30).status == 0 { removed.append("volume \(v)") }
        }
        let nets = await engine.run(["network", "ls", "--format", "{{.Name}}"] + filter, environment: env, timeout: 30)
        for n in nets.stdout.split(separator: "\n").map(String.init) where !n.isEmpty {
            if await engine.run(["network", "rm", n], environment: env, timeout: 30).status == 0 { removed.append("network \(n)") }
        }
        return removed
    }

    /// After spawn: the container id from the cid file (polls up to `timeout` seconds), nil if
    /// none. Once the id is known the engine client has read its env file, which is removed so
    /// no secret stays on disk while the server runs.
    public static func containerID(_ plan: LaunchPlan, timeout: Double) async -> String? {
        guard let container = plan.container else { return nil }
        let deadline = Date().addingTimeInterval(max(0, timeout))
        while true {
            if let text = try? String(contentsOfFile: container.cidFile, encoding: .utf8) {
                let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !id.isEmpty {
                    PlannedFiles.remove(plan)
                    return id
                }
            }
            if Date() >= deadline { return nil }
            try? await Task.sleep(nanoseconds: 25_000_000)
        }
    }

    /// Stop ladder: `stop -t grace` (SIGTERM, then the engine's SIGKILL after `grace`), then
    /// `kill`, then `rm -f`, and a wait until the engine no longer knows the container; the whole
    /// thing bounded by 30 s. Removes the cid file and the plan's files.
    public static func stop(_ plan: LaunchPlan, containerID: String?, grace: Double, engine: ContainerEngine? = nil) async {
        guard let container = plan.container else { return }
        defer {
            try? FileManager.default.removeItem(atPath: container.cidFile)
            PlannedFiles.remove(plan)
            plan.secrets?.removeDirectory()
        }
        let engine = engine ?? self.engine(of: plan)
        guard engine.executable() != nil else { return }
        let env = plan.environment
        let start = Date()
        func remaining() -> Double { max(1, stopBudget - Date().timeIntervalSince(start)) }
        let target = containerID ?? container.name
        let g = Int(min(max(grace, 0), stopBudget - 10).rounded(.up))
        let stopped = await engine.run(["stop", "-t", String(g), target], environment: env, timeout: Double(g) + 5)
        if stopped.timedOut || (stopped.status != 0 && ContainerEngine.classify(stderr: stopped.stderr) != .noSuchContainer) {
            _ = await engine.run(["kill", target], environment: env, timeout: min(5, remaining()))
        }
        // --rm removes the container once it stopped; rm -f covers an engine that did not.
        _ = await engine.run(["rm", "-f", target], environment: env, timeout: min(5, remaining()))
        while Date().timeIntervalSince(start) < stopBudget {
            let r = await engine.run(["inspect", "--format", "{{.State.Status}}", target], environment: env, timeout: min(5, remaining()))
            if r.status != 0 { break }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    /// After the engine client exited: a clear diagnosis (OOM / exit 137, image missing, engine
    /// unreachable, not a TTY, command missing in the image, read-only file system), or nil.
    /// `stderrTail` is the server's last stderr lines. The OOM fact comes from the engine's
    /// event log (the container itself is gone because of `--rm`).
    public static func diagnose(_ plan: LaunchPlan, containerID: String?, exitStatus: Int32,
                                stderrTail: [String], engine: ContainerEngine? = nil) async -> String? {
        var oom: Bool? = nil
        let engine = engine ?? self.engine(of: plan)
        if let id = containerID, plan.container != nil, let query = engine.oomEventQuery {
            let until = String(format: "%.3f", Date().timeIntervalSince1970 + 0.5)
            let r = await engine.run(query(id, until), environment: plan.environment, timeout: 5)
            if r.status == 0 {
                oom = r.stdout.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == engine.oomEventName }
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
    public static func cleanupOrphans(instanceID: String, environment: [String: String], engine: ContainerEngine = .docker,
                                      log: @escaping @Sendable (String) -> Void) async -> [String] {
        await cleanupOrphans(instanceID: instanceID, environment: environment, dryRun: false, engine: engine, log: log).removed
    }

    /// What `cleanupOrphans` saw and did.
    public struct CleanupReport: Sendable {
        /// The verdict on every managed container seen.
        public var decisions: [OrphanDecision] = []
        /// Ids of the containers actually removed.
        public var removed: [String] = []
        /// Why nothing could be inspected (no engine CLI, engine unreachable), if so.
        public var problem: String? = nil
    }

    /// `cleanupOrphans` with a dry-run switch and the full report (for `mcpproxy containers`).
    /// `instanceID` may be empty (the manual command has no instance): then only dead owners'
    /// containers are removed.
    public static func cleanupOrphans(instanceID: String, environment: [String: String], dryRun: Bool,
                                      engine: ContainerEngine = .docker,
                                      owner: ContainerOwner = .probe(pid: getpid()),
                                      isAlive: @escaping @Sendable (Int32, String?) -> Bool = { ContainerLifecycle.processIsAlive($0, $1) },
                                      log: @escaping @Sendable (String) -> Void) async -> CleanupReport {
        var report = CleanupReport()
        let env = environment
        guard engine.executable() != nil else {
            report.problem = "\(engine.name) CLI not found in \(engine.searchDirectories.joined(separator: ", ")); no container cleanup"
            log(report.problem!)
            return report
        }
        let ps = await engine.run(["ps", "-a", "-q", "--no-trunc", "--filter", "label=\(DockerPlanner.Label.managed)=true"],
                                  environment: env, timeout: 30)
        guard ps.status == 0 else {
            report.problem = "container cleanup skipped: \(CommandRunner.lastLine(ps.stderr) ?? "\(engine.name) ps failed") (\(engine.endpointDescription(env)))"
            log(report.problem!)
            return report
        }
        let ids = ps.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if ids.isEmpty { return report }
        let inspect = await engine.run(["inspect", "--format", "{{.Id}}\t{{json .Config.Labels}}"] + ids,
                                       environment: env, timeout: 30)
        // A container can vanish between ps and inspect: inspect then fails for it but still
        // prints the others.
        let observed = parseInspectLabels(inspect.stdout)
        report.decisions = selectOrphans(observed, instanceID: instanceID, host: owner.host,
                                         bootID: owner.bootID, isAlive: isAlive)
        let doomed = report.decisions.filter(\.remove)
        for d in report.decisions {
            log("\(d.remove ? (dryRun ? "would remove" : "removing") : "keeping") container \(d.id.prefix(12)) (\(engine.name), server \(d.server ?? "?")): \(d.reason)")
        }
        if dryRun || doomed.isEmpty { return report }
        let rm = await engine.run(["rm", "-f"] + doomed.map(\.id), environment: env, timeout: 60)
        let removedOut = Set(rm.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        report.removed = doomed.map(\.id).filter { id in removedOut.contains { !$0.isEmpty && id.hasPrefix($0) } }
        if rm.status != 0 { log("\(engine.name) rm -f reported: \(CommandRunner.lastLine(rm.stderr) ?? "status \(rm.status)")") }
        return report
    }

    // MARK: - Pure decisions

    /// The diagnosis of a docker client that exited with `exitStatus`, from its stderr tail and
    /// whether the engine reported an OOM kill (nil: unknown). Nil when nothing specific applies
    /// (a plain exit status is reported by the caller).
    public static func diagnosis(server: String, image: String, memoryLimit: String, command: String,
                                 exitStatus: Int32, stderrTail: [String], oomKilled: Bool?) -> String? {
        let text = stderrTail.joined(separator: "\n")
        let lower = text.lowercased()
        if lower.contains("docker-init") && (lower.contains("not found") || lower.contains("no such file")) {
            return "server \"\(server)\": the Docker engine has no docker-init, which --init needs (\(CommandRunner.lastLine(text) ?? "")); install it on the engine host (Debian: docker.io ships it; or tini) or add \"no_init\" to isolation.allow"
        }
        if oomKilled == true {
            return "server \"\(server)\": the container was killed for running out of memory (OOMKilled, exit \(exitStatus)); its memory limit is \(memoryLimit): raise memory_limit (isolation.memory_limit for this server, or docker_isolation.memory_limit)"
        }
        switch ContainerEngine.classify(stderr: text) {
        case .daemonUnreachable:
            return "server \"\(server)\": the Docker daemon is unreachable (\(CommandRunner.lastLine(text) ?? "")); start Docker, or check DOCKER_HOST / DOCKER_CONTEXT / `docker context show`"
        case .notATTY:
            return "server \"\(server)\": \"the input device is not a TTY\": a docker command is being wrapped in docker again, or extra_args ask for -t; run docker-based servers with isolation mode none (command \"docker\" is skipped automatically) and never pass -t"
        case .imageMissing:
            return "server \"\(server)\": image \"\(image)\" was not found (\(CommandRunner.lastLine(text) ?? "")); pull or build it, or set isolation.image to an image that exists"
        case .commandNotFound where exitStatus == 127 || exitStatus == 126 || exitStatus == 125:
            return "server \"\(server)\": command \"\(command)\" was not found in image \"\(image)\"; set isolation.image to an image that contains it, or fix the command"
        case .permissionDenied where exitStatus == 126:
            return "server \"\(server)\": command \"\(command)\" in image \"\(image)\" cannot be executed by the container user (permission denied); fix its permissions or set isolation.user"
        default:
            break
        }
        if lower.contains("read-only file system") {
            return "server \"\(server)\": it tried to write to the read-only container file system (\(CommandRunner.lastLine(text) ?? "")); write under /tmp, mount a volume with :rw, or add \"writable_rootfs\" to isolation.allow"
        }
        switch exitStatus {
        case 137:
            if oomKilled == false {
                return "server \"\(server)\": the container was killed with SIGKILL (exit 137), not by the OOM killer: something ran docker kill or the engine stopped it"
            }
            return "server \"\(server)\": the container was killed with SIGKILL (exit 137), most likely for running out of memory (limit \(memoryLimit)): raise memory_limit"
        case 125:
            return "server \"\(server)\": docker could not create or start the container: \(CommandRunner.lastLine(text) ?? "docker run failed (exit 125)")"
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
        /// The `mcpproxy.server` label, if any (`server@workspace` with a `mcpproxy.workspace` label).
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
            // A workspace instance's container is named `server@workspace` in the decisions.
            let server = l[DockerPlanner.Label.server].map { s in l[DockerPlanner.Label.workspace].map { "\(s)@\($0)" } ?? s }
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

    // MARK: - Helpers

    /// The server command inside the container: the first argument after the image.
    static func commandInContainer(_ plan: LaunchPlan) -> String {
        guard let image = plan.container?.image, let i = plan.arguments.lastIndex(of: image) else { return "?" }
        var rest = plan.arguments[(i + 1)...]
        if plan.secrets != nil, rest.starts(with: SecretDelivery.launcherArguments) { rest = rest.dropFirst(SecretDelivery.launcherArguments.count) }
        return rest.first ?? "?"
    }
}

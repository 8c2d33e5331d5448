import Foundation
import ProxyCore
#if canImport(Glibc)
import Glibc
#endif

/// `mcpproxy doctor`: whether a server's command resolves where it will run, checked without
/// starting anything.
public enum CommandCheck: Sendable, Equatable {
    /// Found at this path.
    case found(String)
    /// Not there: the server cannot start. The message says where it looked and the fix.
    case missing(String)
    /// Cannot be told now (for example the image is not on this host yet); a note, not a failure.
    case unknown(String)
}

public enum HostCommand {
    /// The executable `command` names on this host, as a shell would find it (a path, or a PATH
    /// lookup in `path`).
    public static func resolve(_ command: String, path: String) -> String? {
        if command.contains("/") { return access(command, X_OK) == 0 ? command : nil }
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/\(command)"
            var st = stat()
            if stat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// The check for servers that run on this host (isolation none and sandbox).
    public static func check(_ command: String, environment: [String: String]) -> CommandCheck {
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        if let found = resolve(command, path: path) { return .found(found) }
        return .missing("command \"\(command)\" not found\(command.contains("/") ? "" : " on PATH (\(path))"): install it or give its full path; the server cannot start")
    }
}

extension ContainerLifecycle {
    /// Looks for the plan's command inside its image without running it: the image's own PATH
    /// (from `image inspect`), then `create` (never started) and `cp CONTAINER:PATH -` for each
    /// candidate, then `rm`. An image that is not on this host is not pulled: that is `unknown`.
    public static func checkCommand(_ plan: LaunchPlan) async -> CommandCheck {
        guard let container = plan.container else { return .unknown("no container in this plan") }
        let command = commandInContainer(plan)
        let engine = engine(of: plan)
        guard engine.executable() != nil else {
            return .unknown("the \(engine.name) CLI is not installed here, so the image cannot be looked into")
        }
        let env = plan.environment
        let image = container.image
        let inspect = await engine.run(["image", "inspect", "--format", "{{json .Config.Env}}", image], environment: env, timeout: 30)
        guard inspect.status == 0 else {
            return .unknown("image \(image) is not on this host yet (it is pulled when the server starts); the command is checked once it is")
        }
        let path = imagePath(inspectEnv: inspect.stdout)
        let candidates = command.contains("/") ? [command]
            : path.split(separator: ":").filter { !$0.isEmpty }.map { "\($0)/\(command)" }
        let created = await engine.run(["create", "--network", "none", "--label", "mcpproxy.doctor=probe",
                                         "--entrypoint", "/mcpproxy-doctor-never-started", image],
                                        environment: env, timeout: 60)
        let id = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard created.status == 0, !id.isEmpty else {
            return .unknown("could not look into image \(image): \(CommandRunner.lastLine(created.stderr) ?? "\(engine.name) create failed")")
        }
        var found: String? = nil
        for candidate in candidates {
            let r = await engine.run(["cp", "\(id):\(candidate)", "-"], environment: env, timeout: 120)
            if r.status == 0 { found = candidate; break }
        }
        _ = await engine.run(["rm", "-f", id], environment: env, timeout: 30)
        if let found { return .found(found) }
        return .missing("command \"\(command)\" is not in image \(image)\(command.contains("/") ? "" : " (looked in its PATH: \(path))"): "
                        + "use an image that has it (isolation.image), or give the path it has inside the image; the server cannot start")
    }

    /// PATH from an image's `Config.Env` (as `{{json .Config.Env}}`), else the engines' default.
    static func imagePath(inspectEnv: String) -> String {
        if let data = inspectEnv.data(using: .utf8),
           let list = try? JSONSerialization.jsonObject(with: data) as? [String],
           let entry = list.first(where: { $0.hasPrefix("PATH=") }) {
            return String(entry.dropFirst(5))
        }
        return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    }
}

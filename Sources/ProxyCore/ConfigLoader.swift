import Foundation

/// A problem found while loading a config: where (file and JSON path) and what.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }
    public var severity: Severity
    public var path: String
    public var message: String
    /// For an unknown key: the known key it is probably a typo of.
    public var suggestion: String? = nil
    public var description: String { "\(path): \(message)" }
}

/// Parses and validates `mcp_config.json`.
///
/// Hand-walked rather than `Codable` so that every problem names its JSON path, unknown keys
/// become warnings instead of failures, and all problems are reported at once.
public enum ConfigLoader {
    /// The result of a successful load: the config and its warnings.
    public struct Loaded: Sendable {
        public var config: ProxyConfig
        public var warnings: [ConfigDiagnostic]
    }

    /// Loads and validates the file at `path`.
    public static func load(path: String) throws -> Loaded {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ProxyError(.invalidConfig, "\(path): cannot read the config file")
        }
        return try parse(data: data, file: path)
    }

    /// Parses and validates config text; `file` is used in messages.
    public static func parse(data: Data, file: String = "mcp_config.json") throws -> Loaded {
        let stripped = JSONC.strip([UInt8](data))
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: Data(stripped), options: [.fragmentsAllowed])
        } catch {
            throw ProxyError(.invalidConfig, "\(file): not valid JSON: \(jsonErrorSummary(error, bytes: stripped))")
        }
        var walker = Walker()
        for dup in duplicateKeys(stripped) {
            walker.error(dup.path, "the key appears \(dup.lines.count) times (lines \(dup.lines.map(String.init).joined(separator: ", "))); keep one")
        }
        let config = walker.config(root)
        let errors = walker.diagnostics.filter { $0.severity == .error }
        if !errors.isEmpty {
            // Typo hints go with the errors: "needs a command" next to "comand: did you mean".
            let hints = walker.diagnostics.filter { $0.severity == .warning && $0.suggestion != nil }
            let lines = (errors + hints).map { "  \($0.path): \($0.message)" }.joined(separator: "\n")
            throw ProxyError(.invalidConfig, "\(file): invalid config:\n\(lines)")
        }
        return Loaded(config: config, warnings: walker.diagnostics.filter { $0.severity == .warning })
    }

    static func jsonErrorSummary(_ error: Error, bytes: [UInt8]) -> String {
        let ns = error as NSError
        if let index = ns.userInfo["NSJSONSerializationErrorIndex"] as? Int, index <= bytes.count {
            var line = 1, col = 1
            for b in bytes[0..<index] { if b == 0x0A { line += 1; col = 1 } else { col += 1 } }
            return "syntax error at line \(line), column \(col)"
        }
        let text = ns.userInfo[NSDebugDescriptionErrorKey] as? String ?? ns.localizedDescription
        if let offset = offsetInMessage(text), offset <= bytes.count {
            let (line, col) = lineColumn(bytes, offset)
            return "syntax error at line \(line), column \(col) (\(text))"
        }
        return text
    }

    /// Parses durations like "30s", "500ms", "2m", "1h" or a bare number of seconds.
    public static func parseDuration(_ value: Any) -> Double? {
        if let n = value as? NSNumber, !(value is Bool) { return n.doubleValue >= 0 ? n.doubleValue : nil }
        guard let s = value as? String else { return nil }
        let t = s.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            let num = String(t.dropLast(suffix.count))
            if let v = Double(num), v >= 0 { return v * scale }
            if suffix == "s" { continue }  // "ms" is also checked first
        }
        if let v = Double(t), v >= 0 { return v }
        return nil
    }

    /// Parses sizes like "512m", "1g", "64k", "1024" (bytes) as Docker does.
    public static func parseByteSize(_ s: String) -> Int? {
        let t = s.trimmingCharacters(in: .whitespaces).lowercased()
        guard !t.isEmpty else { return nil }
        var digits = t
        var scale = 1
        let suffixes: [(String, Int)] = [("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30),
                                         ("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30),
                                         ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("b", 1)]
        for (suffix, s) in suffixes where t.hasSuffix(suffix) {
            digits = String(t.dropLast(suffix.count)); scale = s; break
        }
        if let v = Int(digits), v > 0 { return v * scale }
        if let v = Double(digits), v > 0 { return Int(v * Double(scale)) }
        return nil
    }

    /// Parses a uid range "FIRST-LAST" (0 < FIRST <= LAST < 2^32 - 1) into (first, count).
    public static func parseUIDRange(_ s: String) -> (first: UInt32, count: UInt32)? {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = UInt32(parts[0].trimmingCharacters(in: .whitespaces)),
              let b = UInt32(parts[1].trimmingCharacters(in: .whitespaces)),
              a > 0, a <= b, b < UInt32.max else { return nil }
        return (a, b - a + 1 == 0 ? UInt32.max : b - a + 1)
    }

    /// Valid server names: used in file names, container names and `server:tool` routing.
    public static func isValidServerName(_ name: String) -> Bool {
        guard !name.isEmpty, name.count <= 64 else { return false }
        return name.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9")
                || $0 == "-" || $0 == "_" || $0 == "."
        } && !name.hasPrefix(".") && !name.contains("__")
    }
}

/// Walks the JSON tree, collecting diagnostics with JSON paths.
struct Walker {
    var diagnostics: [ConfigDiagnostic] = []
    /// The global `monitor`, which a server's own `monitor` keys override.
    var monitorBase = MonitorConfig()

    mutating func error(_ path: String, _ message: String, suggestion: String? = nil) {
        diagnostics.append(.init(severity: .error, path: path, message: message, suggestion: suggestion))
    }
    mutating func warn(_ path: String, _ message: String, suggestion: String? = nil) {
        diagnostics.append(.init(severity: .warning, path: path, message: message, suggestion: suggestion))
    }

    mutating func object(_ v: Any, _ path: String) -> [String: Any]? {
        if let o = v as? [String: Any] { return o }
        error(path, "expected an object, found \(typeName(v))")
        return nil
    }
    mutating func string(_ v: Any, _ path: String) -> String? {
        if let s = v as? String { return s }
        error(path, "expected a string, found \(typeName(v))")
        return nil
    }
    mutating func bool(_ v: Any, _ path: String) -> Bool? {
        if let n = v as? NSNumber, CFGetTypeIDIsBool(n) { return n.boolValue }
        error(path, "expected true or false, found \(typeName(v))")
        return nil
    }
    mutating func int(_ v: Any, _ path: String, min: Int = 0) -> Int? {
        if let n = v as? NSNumber, !CFGetTypeIDIsBool(n), n.doubleValue == n.doubleValue.rounded(), n.intValue >= min {
            return n.intValue
        }
        error(path, "expected a whole number ≥ \(min), found \(typeName(v))")
        return nil
    }
    mutating func stringArray(_ v: Any, _ path: String) -> [String]? {
        guard let a = v as? [Any] else { error(path, "expected an array of strings, found \(typeName(v))"); return nil }
        var out: [String] = []
        for (i, e) in a.enumerated() { if let s = string(e, "\(path)[\(i)]") { out.append(s) } }
        return out
    }
    /// An object of strings; `scalars` also accepts numbers and booleans (env values written
    /// unquoted, as some client configs do).
    mutating func stringMap(_ v: Any, _ path: String, scalars: Bool = false) -> [String: String]? {
        guard let o = object(v, path) else { return nil }
        var out: [String: String] = [:]
        for (k, e) in o {
            if let s = e as? String { out[k] = s }
            else if scalars, let n = e as? NSNumber { out[k] = CFGetTypeIDIsBool(n) ? (n.boolValue ? "true" : "false") : n.stringValue }
            else { error("\(path).\(k)", "expected a string, found \(typeName(e))") }
        }
        return out
    }
    mutating func duration(_ v: Any, _ path: String) -> Double? {
        if let d = ConfigLoader.parseDuration(v) { return d }
        error(path, "expected a duration like \"30s\", \"500ms\" or \"2m\", found \(describe(v))")
        return nil
    }
    mutating func byteSize(_ v: Any, _ path: String) -> String? {
        guard let s = string(v, path) else { return nil }
        if ConfigLoader.parseByteSize(s) == nil { error(path, "expected a size like \"512m\" or \"1g\", found \"\(s)\""); return nil }
        return s
    }
    mutating func cpus(_ v: Any, _ path: String) -> String? {
        let s: String
        if let n = v as? NSNumber, !CFGetTypeIDIsBool(n) { s = n.stringValue } else if let t = v as? String { s = t } else {
            error(path, "expected a CPU count like \"1.0\", found \(typeName(v))"); return nil
        }
        guard let d = Double(s), d > 0 else { error(path, "expected a positive CPU count like \"1.0\", found \"\(s)\""); return nil }
        return s
    }
    mutating func isolationMode(_ v: Any, _ path: String) -> IsolationMode? {
        guard let s = string(v, path) else { return nil }
        if let m = IsolationMode(rawValue: s.lowercased()) { return m }
        error(path, "unknown isolation mode \"\(s)\" (expected docker, sandbox or none)")
        return nil
    }
    /// An engine or OCI runtime name: a lower-case word (`docker`, `podman`, `runc`, `runsc`).
    /// Which names exist is the Isolation layer's registry; an unknown one fails the server's
    /// plan with the known names.
    mutating func isolationName(_ v: Any, _ path: String) -> String? {
        guard let s = string(v, path) else { return nil }
        guard !s.isEmpty, s.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            error(path, "expected a name such as \(path.hasSuffix("engine") ? "\"docker\" or \"podman\"" : "\"runc\" or \"runsc\""), found \"\(s)\"")
            return nil
        }
        return s
    }
    mutating func unknownKeys(_ o: [String: Any], _ known: Set<String>, _ path: String) {
        for k in o.keys.sorted() where !known.contains(k) && !k.hasPrefix("_") && !k.hasPrefix("$") {
            // Unknown keys are warnings (newer configs still load), with the known key they are
            // probably a typo of. A typo that would loosen confinement (a misspelled isolation
            // section, or a key inside one, e.g. "docker_isolaton" leaving servers unconfined) is
            // an error.
            if let guess = ConfigLoader.didYouMean(k, among: known) {
                let p = path.isEmpty ? k : "\(path).\(k)"
                if ConfigLoader.confinementSections.contains(guess) || ConfigLoader.isConfinementPath(path) {
                    error(p, "unknown key; did you mean \"\(guess)\"? (a misspelled isolation setting would leave servers less confined than written)", suggestion: guess)
                } else {
                    warn(p, "unknown key (ignored); did you mean \"\(guess)\"?", suggestion: guess)
                }
            } else {
                warn(path.isEmpty ? k : "\(path).\(k)", "unknown key (ignored)")
            }
        }
    }

    mutating func config(_ root: Any) -> ProxyConfig {
        var c = ProxyConfig()
        guard let o = object(root, "$") else { return c }
        let known = Set<String>(["listen", "mcpServers", "docker_isolation", "sandbox", "routing_mode",
                                  "max_request_body", "call_tool_timeout", "allowed_origins", "log_call_arguments",
                                  "data_dir", "api_key", "security", "supervision", "client_idle_timeout",
                                  "metrics_listen", "tracing", "monitor", "workspaces"]).union(GatewayAuthConfig.keys)
        unknownKeys(o, known, "")
        if let v = o["listen"], let s = string(v, "listen") {
            if ListenAddress.parse(s) == nil { error("listen", "expected HOST:PORT (port 0-65535), found \"\(s)\"") } else { c.listen = s }
        }
        if let v = o["metrics_listen"], let s = string(v, "metrics_listen") {
            if let e = ConfigLoader.metricsListenProblem(s, listen: c.listen) { error("metrics_listen", e) } else { c.metricsListen = s }
        }
        if let v = o["routing_mode"], let s = string(v, "routing_mode") {
            if let m = RoutingMode(rawValue: s) { c.routingMode = m } else { error("routing_mode", "expected \"retrieve_tools\" or \"direct\", found \"\(s)\"") }
        }
        if let v = o["max_request_body"] {
            if let n = v as? NSNumber, !CFGetTypeIDIsBool(n), n.intValue > 0 { c.maxRequestBodyBytes = n.intValue }
            else if let s = v as? String, let b = ConfigLoader.parseByteSize(s) { c.maxRequestBodyBytes = b }
            else { error("max_request_body", "expected a size like \"4m\" or a byte count") }
        }
        if let v = o["call_tool_timeout"], let d = duration(v, "call_tool_timeout") { c.callTimeout = d }
        if let v = o["client_idle_timeout"], let d = duration(v, "client_idle_timeout") {
            if d < 1 { error("client_idle_timeout", "must be at least 1s") } else { c.clientIdleTimeout = d }
        }
        if let v = o["allowed_origins"], let a = stringArray(v, "allowed_origins") { c.allowedOrigins = a }
        if let v = o["log_call_arguments"], let b = bool(v, "log_call_arguments") { c.logCallArguments = b }
        if let v = o["docker_isolation"] { c.dockerIsolation = dockerIsolation(v, "docker_isolation") }
        if let v = o["sandbox"] { c.sandbox = sandbox(v, "sandbox") }
        if let v = o["security"] { c.security = security(v, "security") }
        if let v = o["supervision"] { c.supervision = supervision(v, "supervision") }
        if let v = o["tracing"] { c.tracing = tracing(v, "tracing") }
        if let v = o["monitor"] { c.monitor = monitor(v, "monitor", base: c.monitor, global: true) }
        monitorBase = c.monitor
        if let v = o["mcpServers"] { c.servers = servers(v) }
        if let v = o["workspaces"] { c.workspaces = workspaces(v, servers: c.servers) }
        c.auth = auth(o, listen: c.listen)
        return c
    }

    mutating func supervision(_ v: Any, _ path: String) -> SupervisionConfig {
        var s = SupervisionConfig()
        guard let o = object(v, path) else { return s }
        unknownKeys(o, ["ping_interval", "ping_misses", "max_failed_starts", "unresponsive_after"], path)
        if let x = o["ping_interval"], let d = duration(x, "\(path).ping_interval") {
            if d < 0.1 { error("\(path).ping_interval", "must be at least 100ms") } else { s.pingInterval = d }
        }
        if let x = o["ping_misses"], let n = int(x, "\(path).ping_misses", min: 1) { s.pingMisses = n }
        if let x = o["max_failed_starts"], let n = int(x, "\(path).max_failed_starts", min: 1) { s.maxFailedStarts = n }
        if let x = o["unresponsive_after"], let n = int(x, "\(path).unresponsive_after", min: 1) { s.unresponsiveAfter = n }
        return s
    }

    mutating func security(_ v: Any, _ path: String) -> SecurityConfig {
        var s = SecurityConfig()
        guard let o = object(v, path) else { return s }
        unknownKeys(o, ["scanners"], path)
        guard let x = o["scanners"] else { return s }
        guard let list = x as? [Any] else { error("\(path).scanners", "expected an array of {name, image, args}"); return s }
        var names = Set<String>()
        for (i, e) in list.enumerated() {
            let p = "\(path).scanners[\(i)]"
            guard let so = object(e, p) else { continue }
            unknownKeys(so, ["name", "image", "args", "timeout"], p)
            guard let n = so["name"].flatMap({ string($0, "\(p).name") }), !n.isEmpty else { error("\(p).name", "a scanner needs a name"); continue }
            guard let image = so["image"].flatMap({ string($0, "\(p).image") }), !image.isEmpty else { error("\(p).image", "a scanner needs an image"); continue }
            if !names.insert(n).inserted { error("\(p).name", "duplicate scanner name \"\(n)\""); continue }
            var plugin = ScannerPluginConfig(name: n, image: image)
            if let a = so["args"], let args = stringArray(a, "\(p).args") { plugin.args = args }
            if let t = so["timeout"], let d = duration(t, "\(p).timeout") { plugin.timeout = d }
            s.scanners.append(plugin)
        }
        return s
    }

    mutating func dockerIsolation(_ v: Any, _ path: String) -> DockerIsolationConfig {
        var d = DockerIsolationConfig()
        guard let o = object(v, path) else { return d }
        unknownKeys(o, ["mode", "enabled", "memory_limit", "cpu_limit", "timeout", "network_mode", "registry",
                        "default_images", "extra_args", "user", "pids_limit", "tmpfs_size", "engine", "oci_runtime"], path)
        if let x = o["mode"] { d.mode = isolationMode(x, "\(path).mode") }
        if let x = o["enabled"] { d.enabled = bool(x, "\(path).enabled") }
        if let x = o["memory_limit"], let s = byteSize(x, "\(path).memory_limit") { d.memoryLimit = s }
        if let x = o["cpu_limit"], let s = cpus(x, "\(path).cpu_limit") { d.cpuLimit = s }
        if let x = o["timeout"], let t = duration(x, "\(path).timeout") { d.timeout = t }
        if let x = o["network_mode"], let s = string(x, "\(path).network_mode") { d.networkMode = s }
        if let x = o["registry"], let s = string(x, "\(path).registry") { d.registry = s }
        if let x = o["default_images"], let m = stringMap(x, "\(path).default_images") {
            d.defaultImages.merge(m) { _, new in new }
        }
        if let x = o["extra_args"], let a = stringArray(x, "\(path).extra_args") { d.extraArgs = a }
        if let x = o["user"], let s = string(x, "\(path).user") { d.user = s }
        if let x = o["pids_limit"], let n = int(x, "\(path).pids_limit", min: 1) { d.pidsLimit = n }
        if let x = o["tmpfs_size"], let s = byteSize(x, "\(path).tmpfs_size") { d.tmpfsSize = s }
        if let x = o["engine"], let s = isolationName(x, "\(path).engine") { d.engine = s }
        if let x = o["oci_runtime"], let s = isolationName(x, "\(path).oci_runtime") { d.ociRuntime = s }
        return d
    }

    mutating func sandbox(_ v: Any, _ path: String) -> SandboxGlobalConfig {
        var s = SandboxGlobalConfig()
        guard let o = object(v, path) else { return s }
        unknownKeys(o, ["allow_degraded", "read_paths", "write_paths", "memory_limit", "max_open_files",
                        "max_processes", "cpu_seconds", "user", "uid_range", "home_size"], path)
        if let x = o["allow_degraded"], let b = bool(x, "\(path).allow_degraded") { s.allowDegraded = b }
        if let x = o["read_paths"], let a = stringArray(x, "\(path).read_paths") { s.readPaths = a }
        if let x = o["write_paths"], let a = stringArray(x, "\(path).write_paths") { s.writePaths = a }
        if let x = o["memory_limit"], let m = byteSize(x, "\(path).memory_limit") { s.memoryLimit = m }
        if let x = o["max_open_files"], let n = int(x, "\(path).max_open_files", min: 16) { s.maxOpenFiles = n }
        if let x = o["max_processes"], let n = int(x, "\(path).max_processes", min: 1) { s.maxProcesses = n }
        if let x = o["cpu_seconds"], let n = int(x, "\(path).cpu_seconds", min: 1) { s.cpuSeconds = n }
        if let x = o["user"], let u = string(x, "\(path).user") { s.user = u }
        if let x = o["uid_range"], let r = string(x, "\(path).uid_range") {
            if ConfigLoader.parseUIDRange(r) != nil { s.uidRange = r }
            else { error("\(path).uid_range", "expected \"FIRST-LAST\" with 0 < FIRST <= LAST < 4294967295, found \"\(r)\"") }
        }
        if let x = o["home_size"], let b = byteSize(x, "\(path).home_size") { s.homeSize = b }
        return s
    }

    mutating func servers(_ v: Any) -> [ServerConfig] {
        var entries: [(path: String, name: String?, body: Any)] = []
        if let a = v as? [Any] {
            for (i, e) in a.enumerated() {
                let name = (e as? [String: Any])?["name"] as? String
                entries.append(("mcpServers[\(i)]", name, e))
            }
        } else if let o = v as? [String: Any] {
            // Claude Desktop / Cursor form: {"mcpServers": {"name": {...}}}
            for k in o.keys.sorted() { entries.append(("mcpServers.\(k)", k, o[k]!)) }
        } else {
            error("mcpServers", "expected an array of servers or an object keyed by server name, found \(typeName(v))")
            return []
        }
        var out: [ServerConfig] = []
        var seen: [String: String] = [:]
        for entry in entries {
            guard let s = server(entry.body, entry.path, defaultName: entry.name) else { continue }
            if let first = seen[s.name] {
                error("\(entry.path).name", "duplicate server name \"\(s.name)\" (first defined at \(first))")
                continue
            }
            seen[s.name] = entry.path
            out.append(s)
        }
        return out
    }

    mutating func server(_ v: Any, _ path: String, defaultName: String?) -> ServerConfig? {
        guard let o = object(v, path) else { return nil }
        unknownKeys(o, ["name", "command", "args", "env", "url", "protocol", "type", "enabled", "disabled", "working_dir",
                        "isolation", "quarantined", "timeout", "headers", "cwd", "allow_client_requests", "monitor", "egress",
                        "instance", "idle_timeout"], path)
        var name = defaultName
        if let x = o["name"] { name = string(x, "\(path).name") }
        guard let name, !name.isEmpty else { error("\(path).name", "a server needs a name"); return nil }
        if !ConfigLoader.isValidServerName(name) {
            error("\(path).name", "invalid server name \"\(name)\": use letters, digits, '-', '_' and '.', at most 64 characters, no \"__\"")
            return nil
        }
        var s = ServerConfig(name: name)
        if let x = o["command"], let c = string(x, "\(path).command") {
            if c.trimmingCharacters(in: .whitespaces).isEmpty { error("\(path).command", "command is empty") } else { s.command = c }
        }
        if let x = o["args"], let a = stringArray(x, "\(path).args") { s.args = a }
        if let x = o["env"], let m = stringMap(x, "\(path).env", scalars: true) {
            for k in m.keys where k.isEmpty || k.contains("=") { error("\(path).env", "invalid environment variable name \"\(k)\"") }
            s.env = m
            secretReferences(m, "\(path).env")
        }
        if let x = o["headers"], let m = stringMap(x, "\(path).headers") { s.headers = m; secretReferences(m, "\(path).headers") }
        if let x = o["url"], let u = string(x, "\(path).url") {
            // A `${secret:NAME}` reference is checked as a plain word; its value never is.
            secretReferences(["": u], "\(path).url")
            let checked = SecretReference.placeholder(u)
            if let url = URL(string: checked), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil {
                s.url = u
            } else { error("\(path).url", "expected an http:// or https:// URL, found \"\(u)\"") }
        }
        for key in ["protocol", "type"] {
            guard let x = o[key], let p = string(x, "\(path).\(key)") else { continue }
            switch p.lowercased() {
            case "stdio": s.protocolKind = .stdio
            case "http", "streamable-http", "streamable_http", "streamablehttp": s.protocolKind = .http
            case "sse": s.protocolKind = .sse
            case "auto", "": s.protocolKind = .auto
            default: error("\(path).\(key)", "unknown protocol \"\(p)\" (expected stdio, http, streamable-http, sse or auto)")
            }
        }
        if let x = o["enabled"], let b = bool(x, "\(path).enabled") { s.enabled = b }
        if let x = o["disabled"], let b = bool(x, "\(path).disabled") { s.enabled = !b }
        if let x = o["working_dir"] ?? o["cwd"], let w = string(x, "\(path).working_dir") { s.workingDir = w }
        if let x = o["quarantined"], let b = bool(x, "\(path).quarantined") { s.quarantined = b }
        if let x = o["timeout"], let t = duration(x, "\(path).timeout") { s.startupTimeout = t }
        if let x = o["allow_client_requests"], let list = stringArray(x, "\(path).allow_client_requests") {
            for v in list {
                if let k = ClientRequestKind(rawValue: v) { s.clientRequests.insert(k) } else {
                    error("\(path).allow_client_requests", "unknown request kind \"\(v)\" (expected sampling, elicitation or roots)")
                }
            }
        }
        if let x = o["isolation"] { s.isolation = isolation(x, "\(path).isolation") }
        if let x = o["monitor"] { s.monitor = monitor(x, "\(path).monitor", base: monitorBase, global: false) }
        if let x = o["egress"] {
            if let a = x as? [Any] {
                var rules: [EgressRule] = []
                for (k, e) in a.enumerated() {
                    guard let text = e as? String else {
                        error("\(path).egress[\(k)]", "expected a \"host:port\" string, found \(typeName(e))")
                        continue
                    }
                    do {
                        let r = try EgressRule.parse(text)
                        if !rules.contains(r) { rules.append(r) }
                    } catch let e as ProxyError { error("\(path).egress[\(k)]", e.message) } catch {}
                }
                s.egress = rules
            } else { error("\(path).egress", "expected an array of \"host:port\" strings, found \(typeName(x))") }
        }
        if let x = o["instance"], let v = string(x, "\(path).instance") {
            switch InstanceScope(rawValue: v) {
            case .shared?: s.instance = .shared
            case .workspace?: s.instance = .workspace
            case .session?: error("\(path).instance", "\"session\" instances are not supported yet (use \"shared\" or \"workspace\")")
            case nil: error("\(path).instance", "expected \"shared\" or \"workspace\", found \"\(v)\"")
            }
        }
        if let x = o["idle_timeout"], let t = duration(x, "\(path).idle_timeout") {
            if t < 1 { error("\(path).idle_timeout", "must be at least 1s") } else { s.idleTimeout = t }
        }

        if s.command == nil && s.url == nil && o["command"] == nil && o["url"] == nil {
            error(path, "server \"\(name)\" needs a \"command\" (stdio) or a \"url\" (http/sse)")
        }
        if s.egress != nil && s.url != nil && s.command == nil {
            error("\(path).egress", "egress applies to servers the gateway launches (\"command\"); a \"url\" server's traffic does not pass through it")
        }
        if s.instance == .workspace && s.command == nil && s.url != nil {
            error("\(path).instance", "\"workspace\" instances need a stdio server (a \"command\"); an http server is one remote endpoint")
        }
        if s.command != nil && s.url != nil { error(path, "server \"\(name)\" has both \"command\" and \"url\"; keep one") }
        switch s.protocolKind {
        case .stdio where s.command == nil && s.url != nil: error("\(path).protocol", "protocol stdio needs a \"command\"")
        case .http where s.url == nil && s.command != nil, .sse where s.url == nil && s.command != nil:
            error("\(path).protocol", "protocol \(s.protocolKind.rawValue) needs a \"url\"")
        default: break
        }
        return s
    }

    /// `workspaces`: `{"NAME": {"members": [...], "servers": [...], "intent": "write"}}`.
    mutating func workspaces(_ v: Any, servers: [ServerConfig]) -> [WorkspaceConfig] {
        guard let o = object(v, "workspaces") else { return [] }
        var out: [WorkspaceConfig] = []
        var memberOf: [String: String] = [:]
        for name in o.keys.sorted() {
            let path = "workspaces.\(name)"
            guard WorkspaceConfig.isValidName(name) else {
                error(path, "invalid workspace name \"\(name)\": use lower-case letters, digits, '-' and '_', at most 32 characters, starting with a letter or digit")
                continue
            }
            guard let w = object(o[name]!, path) else { continue }
            unknownKeys(w, WorkspaceConfig.keys, path)
            var ws = WorkspaceConfig(name: name)
            if let x = w["members"], let a = stringArray(x, "\(path).members") {
                for m in a {
                    let c = WorkspaceConfig.canonicalMember(m)
                    if c.hasSuffix(":") { error("\(path).members", "empty member \"\(m)\""); continue }
                    if let other = memberOf[c], other != name {
                        error("\(path).members", "\(c) is already a member of workspace \"\(other)\" (an identity belongs to at most one workspace)")
                        continue
                    }
                    memberOf[c] = name
                    if !ws.members.contains(c) { ws.members.append(c) }
                }
            }
            if let x = w["servers"], let a = stringArray(x, "\(path).servers") {
                for s in a where !ConfigLoader.isValidServerName(s) { error("\(path).servers", "invalid server name \"\(s)\"") }
                ws.servers = Array(Set(a)).sorted()
            }
            if let x = w["intent"], let s = string(x, "\(path).intent") {
                if ["read", "write", "destructive"].contains(s) { ws.intent = s } else {
                    error("\(path).intent", "expected read, write or destructive, found \"\(s)\"")
                }
            }
            out.append(ws)
        }
        return out
    }

    /// Reports malformed `${secret:...}` references in string values (by key).
    mutating func secretReferences(_ values: [String: String], _ path: String) {
        for (k, v) in values.sorted(by: { $0.key < $1.key }) where v.contains(SecretReference.opener) {
            do { _ = try SecretReference.parse(v) } catch let e as ProxyError {
                error(k.isEmpty ? path : "\(path).\(k)", e.message)
            } catch {}
        }
    }

    mutating func isolation(_ v: Any, _ path: String) -> ServerIsolationConfig? {
        guard let o = object(v, path) else { return nil }
        unknownKeys(o, ["mode", "enabled", "image", "memory_limit", "cpu_limit", "network_mode", "working_dir",
                        "extra_args", "volumes", "user", "pids_limit", "allow", "read_paths", "write_paths",
                        "allow_tcp_connect", "engine", "oci_runtime"], path)
        var i = ServerIsolationConfig()
        if let x = o["mode"] { i.mode = isolationMode(x, "\(path).mode") }
        if let x = o["enabled"] { i.enabled = bool(x, "\(path).enabled") }
        if let x = o["image"], let s = string(x, "\(path).image") { i.image = s }
        if let x = o["memory_limit"], let s = byteSize(x, "\(path).memory_limit") { i.memoryLimit = s }
        if let x = o["cpu_limit"], let s = cpus(x, "\(path).cpu_limit") { i.cpuLimit = s }
        if let x = o["network_mode"], let s = string(x, "\(path).network_mode") { i.networkMode = s }
        if let x = o["working_dir"], let s = string(x, "\(path).working_dir") { i.workingDir = s }
        if let x = o["extra_args"], let a = stringArray(x, "\(path).extra_args") { i.extraArgs = a }
        if let x = o["volumes"], let a = stringArray(x, "\(path).volumes") { i.volumes = a }
        if let x = o["user"], let s = string(x, "\(path).user") { i.user = s }
        if let x = o["pids_limit"], let n = int(x, "\(path).pids_limit", min: 1) { i.pidsLimit = n }
        if let x = o["engine"], let s = isolationName(x, "\(path).engine") { i.engine = s }
        if let x = o["oci_runtime"], let s = isolationName(x, "\(path).oci_runtime") { i.ociRuntime = s }
        if let x = o["allow"], let a = stringArray(x, "\(path).allow") { i.allow = a }
        if let x = o["read_paths"], let a = stringArray(x, "\(path).read_paths") { i.readPaths = a }
        if let x = o["write_paths"], let a = stringArray(x, "\(path).write_paths") { i.writePaths = a }
        if let x = o["allow_tcp_connect"] {
            if let a = x as? [Any] {
                var ports: [Int] = []
                for (k, e) in a.enumerated() {
                    if let p = int(e, "\(path).allow_tcp_connect[\(k)]", min: 1) {
                        if p > 65535 { error("\(path).allow_tcp_connect[\(k)]", "port \(p) is out of range") } else { ports.append(p) }
                    }
                }
                i.allowTCPConnect = ports
            } else { error("\(path).allow_tcp_connect", "expected an array of port numbers") }
        }
        return i
    }
}

func typeName(_ v: Any) -> String {
    if v is NSNull { return "null" }
    if let n = v as? NSNumber { return CFGetTypeIDIsBool(n) ? "a boolean" : "a number" }
    if v is String { return "a string" }
    if v is [Any] { return "an array" }
    if v is [String: Any] { return "an object" }
    return "a value"
}

func describe(_ v: Any) -> String {
    if let s = v as? String { return "\"\(s)\"" }
    return typeName(v)
}

/// Distinguishes JSON booleans from numbers in JSONSerialization output on every platform.
public func CFGetTypeIDIsBool(_ n: NSNumber) -> Bool {
    #if canImport(Darwin)
    return CFGetTypeID(n) == CFBooleanGetTypeID()
    #else
    return String(cString: n.objCType) == "c"
    #endif
}

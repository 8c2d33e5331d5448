import Foundation

/// `docker run` options read the way the docker CLI reads them (spf13/pflag with docker's flag
/// table): long flags as `--flag=value` or `--flag value`, short flags combinable (`-iu0`,
/// `-iv/a:/b`, `-u=0`), boolean flags with every spelling Go's `strconv.ParseBool` accepts,
/// repeated flags kept in order, and `--` ending the options. A value flag takes the next
/// argument whatever it looks like (pflag does), so `--user --privileged` sets the user to
/// "--privileged".
///
/// This is the one parser of docker options in the project: the planner's allowlist
/// (`DockerPlanner`), the facts it believes about the container (`DockerRunFacts`) and
/// `mcpproxy audit` all read options through it.
public enum DockerCLI {
    /// How a flag takes its value.
    public enum Kind: Sendable, Equatable {
        /// `--flag` means true; `--flag=VALUE` parses VALUE with ParseBool; never the next argument.
        case bool
        /// `--flag=VALUE`, `--flag VALUE`, `-fVALUE`, `-f=VALUE`, `-f VALUE`.
        case value
    }

    /// One parsed option.
    public struct Option: Sendable, Equatable, CustomStringConvertible {
        /// The canonical long name (aliases resolved: `net` → `network`).
        public var name: String
        /// The value; for boolean flags "true" or "false" after ParseBool.
        public var value: String
        /// Index of the argument the option was read from (the flag, not its separate value).
        public var index: Int
        /// How it was spelled, for messages (`-iu0` reads as `-u 0`, spelled "-iu0").
        public var spelled: String
        /// The option as a boolean (bool flags only).
        public var isTrue: Bool { value == "true" }

        public var description: String { "--\(name)=\(value)" }
    }

    /// A parse error with the index of the argument it concerns.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var index: Int
        public var message: String
        public var description: String { message }
    }

    /// The result of parsing `docker run` arguments (without `run`).
    public struct Parsed: Sendable, Equatable {
        /// Options in command-line order.
        public var options: [Option] = []
        /// Arguments that are not options, with their index; for `docker run` the first is the
        /// image and the rest the command (docker stops reading options at the first one).
        public var positionals: [(index: Int, value: String)] = []
        /// Index of a `--` that ended the options, if any.
        public var doubleDash: Int?
        /// The first error; docker refuses the whole command line at the first error.
        public var error: ParseError?

        /// Every value of `name`, in order.
        public func values(_ name: String) -> [String] { options.filter { $0.name == name }.map(\.value) }
        /// The last value of `name` (pflag: the last occurrence wins for scalar flags).
        public func last(_ name: String) -> String? { options.last { $0.name == name }?.value }

        public static func == (a: Parsed, b: Parsed) -> Bool {
            a.options == b.options && a.doubleDash == b.doubleDash && a.error == b.error
                && a.positionals.map(\.index) == b.positionals.map(\.index)
                && a.positionals.map(\.value) == b.positionals.map(\.value)
        }
    }

    /// Every `docker run` / `docker create` flag of the docker CLI (20.10 through 28), by its
    /// canonical long name. Hidden and deprecated flags are included: docker still parses them.
    public static let flags: [String: Kind] = {
        var t: [String: Kind] = [:]
        for name in ["detach", "disable-content-trust", "help", "init", "interactive", "no-healthcheck",
                     "oom-kill-disable", "privileged", "publish-all", "quiet", "read-only", "rm", "sig-proxy",
                     "tty", "use-api-socket"] { t[name] = .bool }
        for name in ["add-host", "annotation", "attach", "blkio-weight", "blkio-weight-device", "cap-add", "cap-drop",
                     "cgroup-parent", "cgroupns", "cidfile", "cpu-count", "cpu-percent", "cpu-period", "cpu-quota",
                     "cpu-rt-period", "cpu-rt-runtime", "cpu-shares", "cpus", "cpuset-cpus", "cpuset-mems", "detach-keys",
                     "device", "device-cgroup-rule", "device-read-bps", "device-read-iops", "device-write-bps",
                     "device-write-iops", "dns", "dns-option", "dns-search", "domainname", "entrypoint", "env", "env-file",
                     "expose", "gpus", "group-add", "health-cmd", "health-interval", "health-retries",
                     "health-start-interval", "health-start-period", "health-timeout", "hostname", "io-maxbandwidth",
                     "io-maxiops", "ip", "ip6", "ipc", "isolation", "kernel-memory", "label", "label-file", "link",
                     "link-local-ip", "log-driver", "log-opt", "mac-address", "memory", "memory-reservation",
                     "memory-swap", "memory-swappiness", "mount", "name", "network", "network-alias", "oom-score-adj",
                     "pid", "pids-limit", "platform", "publish", "pull", "restart", "runtime", "security-opt", "shm-size",
                     "stop-signal", "stop-timeout", "storage-opt", "sysctl", "tmpfs", "ulimit", "user", "userns", "uts",
                     "volume", "volume-driver", "volumes-from", "workdir"] { t[name] = .value }
        return t
    }()

    /// Hidden alternative names docker registers for the same option.
    public static let aliases: [String: String] = ["net": "network", "net-alias": "network-alias", "dns-opt": "dns-option"]

    /// Single-letter shorthands.
    public static let shorthands: [Character: String] = [
        "a": "attach", "c": "cpu-shares", "d": "detach", "e": "env", "h": "hostname", "i": "interactive",
        "l": "label", "m": "memory", "P": "publish-all", "p": "publish", "q": "quiet", "t": "tty", "u": "user",
        "v": "volume", "w": "workdir",
    ]

    /// Parses `docker run` arguments (what follows `run`). With `stopAtPositional` (docker run's
    /// own behaviour) the first non-option argument and everything after it are positionals;
    /// without it, every later argument is still read as an option when it looks like one.
    public static func parse(_ args: [String], stopAtPositional: Bool = true) -> Parsed {
        var out = Parsed()
        var i = 0
        func fail(_ index: Int, _ message: String) { if out.error == nil { out.error = ParseError(index: index, message: message) } }
        while i < args.count {
            let s = args[i]
            let at = i
            i += 1
            if s.isEmpty || !s.hasPrefix("-") || s == "-" {
                out.positionals.append((at, s))
                if stopAtPositional {
                    while i < args.count { out.positionals.append((i, args[i])); i += 1 }
                    return out
                }
                continue
            }
            if s == "--" {
                out.doubleDash = at
                while i < args.count { out.positionals.append((i, args[i])); i += 1 }
                return out
            }
            if s.hasPrefix("--") {
                let body = String(s.dropFirst(2))
                if body.hasPrefix("-") || body.hasPrefix("=") { fail(at, "bad flag syntax: \(s)"); return out }
                let parts = body.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let given = String(parts[0])
                let name = aliases[given] ?? given
                guard let kind = flags[name] else { fail(at, "unknown flag: --\(given)"); return out }
                var value: String
                if parts.count == 2 {
                    value = String(parts[1])
                } else if kind == .bool {
                    value = "true"
                } else if i < args.count {
                    value = args[i]; i += 1
                } else {
                    fail(at, "flag needs an argument: \(s)"); return out
                }
                if kind == .bool {
                    guard let b = parseBool(value) else {
                        fail(at, "invalid argument \"\(value)\" for \"--\(given)\" flag: ParseBool: parsing \"\(value)\": invalid syntax")
                        return out
                    }
                    value = b ? "true" : "false"
                }
                out.options.append(Option(name: name, value: value, index: at, spelled: s))
                continue
            }
            // Short flags: -abc, -u0, -u=0, -u 0.
            var shorts = Array(s.dropFirst())
            while !shorts.isEmpty {
                let c = shorts[0]
                guard let name = shorthands[c] else { fail(at, "unknown shorthand flag: '\(c)' in \(s)"); return out }
                let kind = flags[name]!
                var value: String
                if shorts.count > 2 && shorts[1] == "=" {
                    value = String(shorts[2...]); shorts = []
                } else if kind == .bool {
                    value = "true"; shorts.removeFirst()
                } else if shorts.count > 1 {
                    value = String(shorts[1...]); shorts = []
                } else if i < args.count {
                    value = args[i]; i += 1; shorts = []
                } else {
                    fail(at, "flag needs an argument: '\(c)' in \(s)"); return out
                }
                if kind == .bool {
                    guard let b = parseBool(value) else {
                        fail(at, "invalid argument \"\(value)\" for \"-\(c), --\(name)\" flag: ParseBool: parsing \"\(value)\": invalid syntax")
                        return out
                    }
                    value = b ? "true" : "false"
                }
                out.options.append(Option(name: name, value: value, index: at, spelled: s))
            }
        }
        return out
    }

    // MARK: - Go's value grammars

    /// Go's `strconv.ParseBool`.
    public static func parseBool(_ s: String) -> Bool? {
        switch s {
        case "1", "t", "T", "TRUE", "true", "True": return true
        case "0", "f", "F", "FALSE", "false", "False": return false
        default: return nil
        }
    }

    /// Go's `strconv.ParseInt(s, 0, 64)` (what pflag's int flags use): optional sign, then
    /// `0x`/`0o`/`0b` or a leading `0` (octal) prefix, underscores only with a prefix.
    public static func parseGoInt(_ s: String) -> Int64? {
        var body = Substring(s)
        var negative = false
        if let f = body.first, f == "+" || f == "-" { negative = f == "-"; body = body.dropFirst() }
        guard !body.isEmpty else { return nil }
        var base = 10
        var prefixed = false
        let lower = body.lowercased()
        if lower.hasPrefix("0x") { base = 16; body = body.dropFirst(2); prefixed = true }
        else if lower.hasPrefix("0o") { base = 8; body = body.dropFirst(2); prefixed = true }
        else if lower.hasPrefix("0b") { base = 2; body = body.dropFirst(2); prefixed = true }
        else if body.count > 1 && body.first == "0" { base = 8; body = body.dropFirst(); prefixed = true }
        if body.contains("_") {
            // Go's literal syntax: an underscore between digits, or right after a base prefix.
            guard !body.hasSuffix("_"), !body.contains("__"), !body.hasPrefix("_") || prefixed else { return nil }
            body = Substring(body.replacingOccurrences(of: "_", with: ""))
        }
        guard let first = body.first, first != "+", first != "-", let magnitude = UInt64(body, radix: base) else { return nil }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// docker's `RAMInBytes` (go-units): `512m`, `1.5g`, `64 MiB`, `1024`; nil when malformed.
    public static func parseBytes(_ s: String) -> Int64? {
        let pattern = #"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$"#
        guard let re = try? NSRegularExpression(pattern: pattern),
              let m = re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)),
              let numRange = Range(m.range(at: 1), in: s), let size = Double(s[numRange]) else { return nil }
        var mult: Double = 1
        if let r = Range(m.range(at: 2), in: s) {
            switch s[r].lowercased() {
            case "k": mult = 1024
            case "m": mult = 1024 * 1024
            case "g": mult = 1024 * 1024 * 1024
            case "t": mult = 1024 * 1024 * 1024 * 1024
            case "p": mult = 1024 * 1024 * 1024 * 1024 * 1024
            default: break
            }
        }
        let bytes = size * mult
        guard bytes < Double(Int64.max) else { return nil }
        return Int64(bytes)
    }

    /// docker's `--cpus` (a decimal number of CPUs) in nano CPUs; nil when malformed.
    public static func parseNanoCPUs(_ s: String) -> Int64? {
        guard let re = try? NSRegularExpression(pattern: #"^[0-9]+(\.[0-9]+)?$|^\.[0-9]+$"#),
              re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil,
              let d = Decimal(string: s) else { return nil }
        let nano = NSDecimalNumber(decimal: d * 1_000_000_000)
        guard nano.doubleValue < Double(Int64.max) else { return nil }
        return nano.int64Value
    }

    // MARK: - Users

    /// A `--user` value: `user[:group]`, each a name or a number.
    public struct User: Sendable, Equatable {
        public var user: String
        public var group: String?

        /// Parses `spec`; nil when it is empty or has an empty part (docker then falls back to the
        /// image's user).
        public init?(_ spec: String) {
            let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let u = parts.first, !u.isEmpty else { return nil }
            user = u
            if parts.count == 2 {
                guard !parts[1].isEmpty else { return nil }
                group = parts[1]
            }
        }

        /// The numeric id of a part as the runtime reads it (runc: `strconv.Atoi`: optional sign,
        /// decimal digits, leading zeros allowed), or nil for a name.
        public static func numericID(_ part: String) -> Int64? {
            var body = Substring(part)
            var negative = false
            if let f = body.first, f == "+" || f == "-" { negative = f == "-"; body = body.dropFirst() }
            guard !body.isEmpty, body.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            let digits = body.drop { $0 == "0" }
            if digits.isEmpty { return 0 }
            guard digits.count <= 18, let v = Int64(digits) else { return negative ? Int64.min : Int64.max }
            return negative ? -v : v
        }

        /// True when the part means root: the name `root` or any numeric spelling of 0.
        public static func isRootPart(_ part: String) -> Bool {
            part.lowercased() == "root" || numericID(part) == 0
        }

        /// Root as the user, or root as the group.
        public var isRoot: Bool { User.isRootPart(user) || group.map(User.isRootPart) == true }
    }

    // MARK: - Capabilities

    /// Every Linux capability name docker knows, without the `CAP_` prefix.
    public static let capabilities: Set<String> = [
        "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE", "CHOWN",
        "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
        "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE", "NET_BROADCAST",
        "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT",
        "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME",
        "SYS_TTY_CONFIG", "WAKE_ALARM",
    ]

    /// A capability as docker normalizes it (trimmed, upper-cased, `CAP_` prefix except `ALL`).
    public static func normalizeCapability(_ c: String) -> String {
        let u = c.trimmingCharacters(in: .whitespaces).uppercased()
        if u == "ALL" || u == "RESET" || u.hasPrefix("CAP_") { return u }
        return "CAP_" + u
    }

    /// A `--cap-add` or `--cap-drop` list as the engine stores it for `docker run`: each entry
    /// normalized, duplicates removed, sorted. (Unlike compose and services, `docker run` does
    /// not cancel a capability that is both added and dropped; the engine resolves the set when
    /// the container starts: see `DockerRunFacts.effectiveCapabilitySet`.)
    public static func normalizedCapabilities(_ caps: [String]) -> [String] {
        Set(caps.map(normalizeCapability)).sorted()
    }

    // MARK: - Image references

    /// True when `image` is a valid image reference by the distribution grammar
    /// (`[domain[:port]/]path[:tag][@digest]`, lower-case path components): never an option,
    /// never whitespace.
    public static func isValidImageReference(_ image: String) -> Bool {
        guard !image.isEmpty, image.count <= 512, !image.hasPrefix("-") else { return false }
        let component = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
        let domainPart = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
        let domain = "(?:\(domainPart)(?:\\.\(domainPart))*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?"
        let tag = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
        let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}"
        let pattern = "^(?:\(domain)/)?\(component)(?:/\(component))*(?::\(tag))?(?:@\(digest))?$"
        guard let re = try? NSRegularExpression(pattern: pattern) else { return false }
        let range = NSRange(image.startIndex..., in: image)
        guard let m = re.firstMatch(in: image, range: range) else { return false }
        return m.range == range
    }

    // MARK: - --mount

    /// A `--mount` value as docker reads it: one CSV record (Go `encoding/csv`, quotes allowed
    /// around whole fields), each field `key=value` with the key lower-cased, `readonly`/`ro`,
    /// `volume-nocopy`, `bind-recursive`... allowed bare. Later keys win.
    public struct Mount: Sendable, Equatable {
        /// The fields in order, keys lower-cased, values as given (quotes removed).
        public var fields: [(key: String, value: String?)]

        public static func == (a: Mount, b: Mount) -> Bool {
            a.fields.map(\.key) == b.fields.map(\.key) && a.fields.map(\.value) == b.fields.map(\.value)
        }

        /// The last value of `key` (any of `keys`).
        public func value(_ keys: String...) -> String?? {
            for f in fields.reversed() where keys.contains(f.key) { return .some(f.value) }
            return .none
        }

        /// `type`, lower-cased; docker's default is `volume`.
        public var type: String { (value("type") ?? nil)?.lowercased() ?? "volume" }
        public var source: String? { value("source", "src") ?? nil }
        public var target: String? { value("target", "dst", "destination") ?? nil }
        /// The `readonly`/`ro` field: bare means true; nil when malformed; false when absent.
        public var readOnly: Bool? {
            guard let v = value("readonly", "ro") else { return false }
            guard let s = v else { return true }
            return DockerCLI.parseBool(s)
        }

        /// Renders the mount back as one CSV record docker reads the same way.
        public var rendered: String {
            fields.map { f in
                let text = f.value.map { "\(f.key)=\($0)" } ?? f.key
                if text.contains(",") || text.contains("\"") || text.hasPrefix(" ") {
                    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                }
                return text
            }.joined(separator: ",")
        }
    }

    /// Parses a `--mount` value; returns an error message when docker would refuse it.
    public static func parseMount(_ value: String) -> Result<Mount, ParseError> {
        func err(_ m: String) -> Result<Mount, ParseError> { .failure(ParseError(index: 0, message: m)) }
        if value.contains("\n") || value.contains("\r") { return err("a mount may not contain a line break") }
        guard let record = csvRecord(value) else { return err("malformed CSV (a quote inside an unquoted field, or an unterminated quote)") }
        var fields: [(String, String?)] = []
        for field in record {
            let kv = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(kv[0]).lowercased()
            if kv.count == 2 {
                fields.append((key, String(kv[1])))
            } else {
                guard ["readonly", "ro", "volume-nocopy", "bind-nonrecursive"].contains(key) else {
                    return err("invalid field '\(field)' must be a key=value pair")
                }
                fields.append((key, nil))
            }
        }
        return .success(Mount(fields: fields.map { (key: $0.0, value: $0.1) }))
    }

    /// One record of Go's `encoding/csv` reader with default settings (comma separator, no lazy
    /// quotes, no leading-space trimming). Nil when the reader would return an error.
    static func csvRecord(_ s: String) -> [String]? {
        var fields: [String] = []
        var chars = Array(s)[...]
        if chars.isEmpty { return nil }
        while true {
            if chars.first == "\"" {
                chars = chars.dropFirst()
                var field = ""
                while true {
                    guard let c = chars.first else { return nil }
                    chars = chars.dropFirst()
                    if c == "\"" {
                        if chars.first == "\"" { field.append("\""); chars = chars.dropFirst(); continue }
                        break
                    }
                    field.append(c)
                }
                fields.append(field)
                guard let next = chars.first else { return fields }
                guard next == "," else { return nil }
                chars = chars.dropFirst()
            } else {
                var field = ""
                while let c = chars.first, c != "," {
                    if c == "\"" { return nil }
                    field.append(c); chars = chars.dropFirst()
                }
                fields.append(field)
                guard chars.first == "," else { return fields }
                chars = chars.dropFirst()
            }
        }
    }
}

import Foundation

/// `${secret:NAME}` references inside a server's `env` values, HTTP `headers` values and `url`
/// (docs/configuration.md, "Secrets"). The config, the server identity, REST, `doctor`, logs and
/// the activity log only ever hold the reference; `SecretResolver.resolve` replaces it with the
/// value at launch/connect time.
///
/// Syntax: `${secret:NAME}` anywhere in the string, several per string allowed; NAME uses
/// letters, digits, `-`, `_` and `.` (at most 64, not starting with `.`). `$${secret:` writes a
/// literal `${secret:`. Other `${...}` text is left alone.
public enum SecretReference {
    public static let opener = "${secret:"
    static let escapedOpener = "$" + opener

    /// A piece of a string value: literal text or a reference.
    public enum Part: Sendable, Equatable {
        case text(String)
        case ref(String)
    }

    /// Valid secret names (also the CLI's and REST's rule).
    public static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.count <= 64, !name.hasPrefix(".") else { return false }
        return name.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "-" || $0 == "_" || $0 == "."
        }
    }

    /// The string's parts; throws (invalidConfig) on an unterminated reference or an invalid name.
    public static func parse(_ s: String) throws -> [Part] {
        var parts: [Part] = []
        var text = ""
        var i = s.startIndex
        // Fast path: no `${secret:` at all (the usual case).
        guard s.contains(opener) else { return s.isEmpty ? [] : [.text(s)] }
        while i < s.endIndex {
            let rest = s[i...]
            if rest.hasPrefix(escapedOpener) {
                text += opener
                i = s.index(i, offsetBy: escapedOpener.count)
                continue
            }
            if rest.hasPrefix(opener) {
                let start = s.index(i, offsetBy: opener.count)
                guard let close = s[start...].firstIndex(of: "}") else {
                    throw ProxyError(.invalidConfig, "unterminated secret reference \"\(String(rest.prefix(40)))\": write ${secret:NAME}")
                }
                let name = String(s[start..<close])
                guard isValidName(name) else {
                    throw ProxyError(.invalidConfig, "invalid secret name \"\(name)\" in ${secret:\(name)}: use letters, digits, '-', '_' and '.', at most 64 characters")
                }
                if !text.isEmpty { parts.append(.text(text)); text = "" }
                parts.append(.ref(name))
                i = s.index(after: close)
                continue
            }
            text.append(s[i])
            i = s.index(after: i)
        }
        if !text.isEmpty { parts.append(.text(text)) }
        return parts
    }

    /// The names referenced by `s` (in order, repeats kept); empty when it has none or is invalid.
    public static func names(in s: String) -> [String] {
        guard s.contains(opener), let parts = try? parse(s) else { return [] }
        return parts.compactMap { if case .ref(let n) = $0 { return n } else { return nil } }
    }

    /// `s` with every reference replaced by `value(name)`.
    public static func substitute(_ s: String, _ value: (String) throws -> String) throws -> String {
        guard s.contains(opener) else { return s }
        var out = ""
        for part in try parse(s) {
            switch part {
            case .text(let t): out += t
            case .ref(let n): out += try value(n)
            }
        }
        return out
    }

    /// `s` with each reference replaced by a harmless placeholder word, for syntax checks (a URL
    /// with a reference in its host or path is validated as if the reference were a plain word).
    public static func placeholder(_ s: String) -> String {
        (try? substitute(s) { _ in "secret" }) ?? s
    }
}

/// Where `SecretResolver` finds values: the running proxy installs the encrypted store here
/// (`SecretResolver.install`); nil means no store (every reference is then a missing secret).
public protocol SecretSource: Sendable {
    /// The plain value of a global-scope secret, nil when no secret has that name. Throws when it
    /// exists but cannot be read (another master key, a damaged row, an unreadable key file).
    func secretValue(named name: String) throws -> String?
    /// For an instance of `workspace`: that workspace's secret of this name, else the global
    /// one (a workspace's own secrets shadow global ones for its instances only).
    func secretValue(named name: String, workspace: String?) throws -> String?
}

extension SecretSource {
    public func secretValue(named name: String, workspace: String?) throws -> String? {
        try secretValue(named: name)
    }
}

/// Replaces `${secret:NAME}` references in a server's `env`, `headers` and `url` with values:
/// the ONE place values enter a server's config, called just before a launch is planned or an
/// HTTP connection made. The returned config goes to the launcher/transport only; nothing else
/// (REST, identity, logs) ever sees it.
public enum SecretResolver {
    private static let box = SourceBox()

    private final class SourceBox: @unchecked Sendable {  // @unchecked: `source` is read and written under `lock` only
        let lock = NSLock()
        var source: SecretSource?
    }

    /// Installs the proxy's secret store (once at start-up).
    public static func install(_ source: SecretSource?) {
        box.lock.lock(); defer { box.lock.unlock() }
        box.source = source
    }

    static var installed: SecretSource? {
        box.lock.lock(); defer { box.lock.unlock() }
        return box.source
    }

    /// Every secret name `server` references, with where (`env.GH_TOKEN`, `headers.Authorization`,
    /// `url`), sorted by place.
    public static func references(of server: ServerConfig) -> [(place: String, name: String)] {
        var out: [(String, String)] = []
        for k in server.env.keys.sorted() { for n in SecretReference.names(in: server.env[k]!) { out.append(("env.\(k)", n)) } }
        for k in server.headers.keys.sorted() { for n in SecretReference.names(in: server.headers[k]!) { out.append(("headers.\(k)", n)) } }
        if let u = server.url { for n in SecretReference.names(in: u) { out.append(("url", n)) } }
        return out
    }

    /// True when `server` references `name`.
    public static func uses(_ server: ServerConfig, secret name: String) -> Bool {
        references(of: server).contains { $0.name == name }
    }

    /// Names of the `env` variables of `server` whose values hold a reference: docker mode
    /// delivers those through a file (never `docker run -e`, which `docker inspect` shows).
    public static func secretEnvironmentNames(of server: ServerConfig) -> Set<String> {
        Set(server.env.compactMap { k, v in SecretReference.names(in: v).isEmpty ? nil : k })
    }

    /// `server` with every reference replaced by its value from `source` (default: the installed
    /// store). A missing or unreadable secret is an invalidConfig error naming the server, the
    /// place and the reference. `config` is accepted for callers that pass it; it changes
    /// nothing (docker mode takes the resolved values through `SecretDelivery`).
    /// `workspace`: the instance's workspace (`instance: "workspace"`), whose own secrets come
    /// first; nil for a shared instance (global secrets only).
    public static func resolve(_ server: ServerConfig, config: ProxyConfig? = nil,
                               source: SecretSource? = nil, workspace: String? = nil) throws -> ServerConfig {
        let store = source ?? installed
        var cache: [String: String] = [:]
        func value(_ place: String) -> (String) throws -> String {
            { name in
                if let v = cache[name] { return v }
                let v: String?
                do { v = try store?.secretValue(named: name, workspace: workspace) } catch let e as ProxyError {
                    throw ProxyError(.invalidConfig, "server \"\(server.name)\": cannot read ${secret:\(name)} (\(place)): \(e.message)")
                }
                guard let v else {
                    throw ProxyError(.invalidConfig, "server \"\(server.name)\": \(place) references ${secret:\(name)}, but no secret \"\(name)\" is set; set it with `mcpproxy secret set \(name)` (value on stdin), then restart the server")
                }
                cache[name] = v
                return v
            }
        }
        var out = server
        for (k, v) in server.env where v.contains(SecretReference.opener) {
            out.env[k] = try SecretReference.substitute(v, value("env.\(k)"))
        }
        for (k, v) in server.headers where v.contains(SecretReference.opener) {
            out.headers[k] = try SecretReference.substitute(v, value("headers.\(k)"))
        }
        if let u = server.url, u.contains(SecretReference.opener) {
            out.url = try SecretReference.substitute(u, value("url"))
        }
        return out
    }
}

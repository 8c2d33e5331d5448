import Foundation
import MCPSecurity
import NIOConcurrencyHelpers
import ProxyCore

/// The web console's sign-in sessions: the admin API key is exchanged once for a random session
/// id held in an HttpOnly, SameSite=Strict cookie scoped to `/ui`. Sessions live in memory only
/// (a restart signs everyone out) and expire after `lifetime`. The table is keyed by the SHA-256
/// of the id, so a lookup compares no secret byte by byte, and the raw id is never stored.
public final class ConsoleSessions: Sendable {
    public struct Session: Sendable, Equatable {
        /// The cookie value (64 hex characters, 256 random bits). Only the creator sees it.
        public let id: String
        /// The CSRF token bound to this session (another 256 random bits), sent in every form.
        public let csrf: String
        public let createdAt: Date
        public let expiresAt: Date
    }

    /// A one-shot message shown on the next page (after a POST redirects).
    public struct Flash: Sendable, Equatable {
        public var ok: Bool
        public var text: String
    }

    struct Entry {
        var session: Session
        var flash: Flash?
    }

    public static let cookieName = "mcpproxy_ui"
    public let lifetime: TimeInterval
    public let maxSessions: Int
    let now: @Sendable () -> Date
    private let table = NIOLockedValueBox<[String: Entry]>([:])

    public init(lifetime: TimeInterval = 12 * 3600, maxSessions: Int = 256, now: @escaping @Sendable () -> Date = { Date() }) {
        self.lifetime = lifetime
        self.maxSessions = maxSessions
        self.now = now
    }

    /// 256 random bits from the system's CSPRNG, as 64 hex characters (also the admin API key
    /// and the input-required states).
    static func randomToken() -> String {
        var rng = SystemRandomNumberGenerator()
        var out = ""
        out.reserveCapacity(64)
        for _ in 0..<4 {
            let v = rng.next() as UInt64
            out += String(v, radix: 16).leftPadded(to: 16)
        }
        return out
    }

    static func key(_ id: String) -> String { AgentTokenIssuer.hash(id) }

    /// A new session. When the table is full, expired sessions go first, then the oldest.
    public func create() -> Session {
        let t = now()
        let s = Session(id: Self.randomToken(), csrf: Self.randomToken(), createdAt: t, expiresAt: t.addingTimeInterval(lifetime))
        table.withLockedValue { all in
            if all.count >= maxSessions {
                all = all.filter { $0.value.session.expiresAt > t }
                while all.count >= maxSessions, let oldest = all.min(by: { $0.value.session.createdAt < $1.value.session.createdAt }) {
                    all.removeValue(forKey: oldest.key)
                }
            }
            all[Self.key(s.id)] = Entry(session: s, flash: nil)
        }
        return s
    }

    /// The live session with this id; nil for an unknown, ended or expired one (an expired one
    /// is dropped).
    public func session(id: String) -> Session? {
        guard id.utf8.count == 64 else { return nil }
        let k = Self.key(id), t = now()
        return table.withLockedValue { all -> Session? in
            guard let e = all[k] else { return nil }
            if e.session.expiresAt <= t { all.removeValue(forKey: k); return nil }
            return e.session
        }
    }

    /// The session named by a request's `Cookie` header values.
    public func session(cookies: [String]) -> Session? {
        guard let id = Self.cookieValue(cookies, name: Self.cookieName) else { return nil }
        return session(id: id)
    }

    /// Ends a session (logout).
    public func end(_ id: String) {
        _ = table.withLockedValue { $0.removeValue(forKey: Self.key(id)) }
    }

    public var count: Int { table.withLockedValue { $0.count } }

    /// True when `presented` is the session's CSRF token (constant time in the token's bytes).
    public static func csrfValid(_ session: Session, presented: String?) -> Bool {
        guard let presented, !presented.isEmpty else { return false }
        return RESTAPI.constantTimeEqual(presented, session.csrf)
    }

    public func setFlash(_ id: String, ok: Bool, _ text: String) {
        table.withLockedValue { all in
            let k = Self.key(id)
            if all[k] != nil { all[k]!.flash = Flash(ok: ok, text: text) }
        }
    }

    /// The pending flash message of a session, removed as it is read.
    public func takeFlash(_ id: String) -> Flash? {
        table.withLockedValue { all in
            let k = Self.key(id)
            defer { all[k]?.flash = nil }
            return all[k]?.flash
        }
    }

    // MARK: cookies

    /// The first cookie called `name` in `Cookie` header values (`a=1; b=2`).
    static func cookieValue(_ headers: [String], name: String) -> String? {
        for header in headers {
            for part in header.split(separator: ";") {
                let kv = part.split(separator: "=", maxSplits: 1)
                guard kv.count == 2 else { continue }
                if kv[0].trimmingCharacters(in: .whitespaces) == name {
                    return kv[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }

    /// The `Set-Cookie` value that hands `session` to the browser.
    public func setCookie(_ session: Session, secure: Bool) -> String {
        let maxAge = max(0, Int(session.expiresAt.timeIntervalSince(now()).rounded()))
        return "\(Self.cookieName)=\(session.id); Path=/ui; Max-Age=\(maxAge); HttpOnly; SameSite=Strict\(secure ? "; Secure" : "")"
    }

    /// The `Set-Cookie` value that removes the cookie.
    public static func clearCookie(secure: Bool) -> String {
        "\(cookieName)=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Strict\(secure ? "; Secure" : "")"
    }
}

/// The same-origin rule for the console's state-changing requests: the browser's `Origin` (or,
/// without one, `Referer`) must name exactly the host and port the request was sent to (its
/// `Host`, which the gateway has already checked against the listen address and `allowed_hosts`).
/// A request with neither header is refused: every browser that runs the console sends `Origin`
/// on a form POST (the console's `Referrer-Policy: same-origin` keeps it from being `null`).
public enum ConsoleOrigin {
    /// Nil when the request is same-origin; otherwise why not.
    public static func check(origin: String?, referer: String?, host: String?) -> String? {
        guard let host, let (h, p) = FrontDoor.splitHost(host) else { return "the request has no valid Host" }
        let source: String
        if let origin {
            source = origin
        } else if let referer {
            source = referer
        } else {
            return "the request has neither Origin nor Referer"
        }
        guard source != "null", let url = URL(string: source), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let uh = url.host?.lowercased() else {
            return "origin \(source.prefix(100)) is not this console's"
        }
        let defaultPort = scheme == "https" ? 443 : 80
        let bare = uh.hasPrefix("[") && uh.hasSuffix("]") ? String(uh.dropFirst().dropLast()) : uh
        if bare == h && (url.port ?? defaultPort) == (p ?? defaultPort) { return nil }
        return "origin \(source.prefix(100)) is not this console's (\(host.prefix(100)))"
    }
}

extension String {
    func leftPadded(to n: Int, with c: Character = "0") -> String {
        count >= n ? self : String(repeating: c, count: n - count) + self
    }
}

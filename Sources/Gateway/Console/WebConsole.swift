import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MCPSecurity
import NIOCore
import ProxyCore
import Upstream

/// The web console at `/ui` (docs/web-console.md): server-rendered pages over the REST API's own
/// functions, for people who approve servers and tools.
///
/// - Sign-in: the admin API key, POSTed once to `/ui/login`, is exchanged for a session cookie
///   (HttpOnly, SameSite=Strict, Path=/ui, Secure with TLS). Agent tokens and OAuth tokens are
///   refused with 403: approving tools is what the agents behind them must never do.
/// - Every page needs a live session (else a redirect to the sign-in page).
/// - Every state-changing POST needs the session's CSRF token (a hidden form field, compared in
///   constant time) and a same-origin `Origin` (or `Referer`); the gateway's Host check runs
///   first, as for every route.
/// - Actions call the same functions as the REST routes (`RESTAPI.perform`,
///   `SecurityRESTExtension.approve`, ...), so both behave identically.
public struct WebConsole: Sendable {
    let rest: RESTAPI
    let auth: Authenticator
    public let sessions: ConsoleSessions
    let secureCookies: Bool
    let log: Logger
    /// The largest form body accepted (sign-in and action forms are tiny).
    static let maxForm = 64 << 10

    public init(rest: RESTAPI, auth: Authenticator, sessions: ConsoleSessions = ConsoleSessions(), secureCookies: Bool, logger: Logger) {
        self.rest = rest
        self.auth = auth
        self.sessions = sessions
        self.secureCookies = secureCookies
        self.log = logger
    }

    var security: SecurityRESTExtension? { rest.extensions.lazy.compactMap { $0 as? SecurityRESTExtension }.first }

    // MARK: responses

    /// Headers on every console response: no scripts, no framing, no sniffing, no caching, and
    /// referrers only to this origin (`no-referrer` would make browsers send `Origin: null` on
    /// form POSTs, which the same-origin check must refuse).
    static func securityHeaders() -> HTTPFields {
        var h = HTTPFields()
        h[.contentSecurityPolicy] = "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
        h[.xContentTypeOptions] = "nosniff"
        h[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        h[HTTPField.Name("X-Frame-Options")!] = "DENY"
        h[.cacheControl] = "no-store"
        return h
    }

    static func page(_ status: HTTPResponse.Status, _ html: String, headers extra: HTTPFields = [:]) -> Response {
        var h = securityHeaders()
        h[.contentType] = "text/html; charset=utf-8"
        for f in extra { h.append(f) }
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    static func redirect(_ location: String, headers extra: HTTPFields = [:]) -> Response {
        var h = securityHeaders()
        h[.location] = location
        for f in extra { h.append(f) }
        return Response(status: .seeOther, headers: h)
    }

    static func status(of e: ProxyError) -> HTTPResponse.Status { e.status }

    // MARK: routes

    public func register(on router: Router<BasicRequestContext>) {
        router.get("/ui/login") { request, _ in
            if currentSession(request) != nil { return Self.redirect("/ui") }
            return Self.page(.ok, ConsolePages.login(error: nil))
        }
        router.post("/ui/login") { request, _ in await login(request) }
        router.post("/ui/logout") { request, _ in
            switch await guarded(request) {
            case .failure(let r): return r.response
            case .success(let (session, _)):
                sessions.end(session.id)
                log.info("console: signed out")
                var h = HTTPFields()
                h[.setCookie] = ConsoleSessions.clearCookie(secure: secureCookies)
                return Self.redirect("/ui/login", headers: h)
            }
        }
        router.get("/ui") { request, _ in
            guard let s = currentSession(request) else { return Self.redirect("/ui/login") }
            return Self.page(.ok, ConsolePages.serverList(await rest.serversJSON(), csrf: s.csrf, flash: sessions.takeFlash(s.id)))
        }
        router.get("/ui/activity") { request, _ in
            guard let s = currentSession(request) else { return Self.redirect("/ui/login") }
            let q = request.uri.queryParameters
            let server = q.get("server").map { String($0) }.flatMap { $0.isEmpty ? nil : $0 }
            let limit = min(1000, max(1, q.get("limit").flatMap { Int($0) } ?? 100))
            guard let security else {
                return Self.page(.notImplemented, ConsolePages.message(title: "No activity log", text: "the security layer (and its activity log) is not running", csrf: s.csrf))
            }
            do {
                let body = try await security.activity(server: server, limit: limit)
                return Self.page(.ok, ConsolePages.activity(body, server: server, limit: limit, csrf: s.csrf, flash: sessions.takeFlash(s.id)))
            } catch let e as ProxyError {
                return Self.page(Self.status(of: e), ConsolePages.message(title: "Activity log unavailable", text: e.description, csrf: s.csrf))
            }
        }
        registerTokens(on: router)
        router.get("/ui/servers/:name") { request, ctx in
            guard let s = currentSession(request) else { return Self.redirect("/ui/login") }
            guard let name = ctx.parameters.get("name") else { return Self.redirect("/ui") }
            let refresh = request.uri.queryParameters.get("refresh").flatMap { Int($0) }.map { min(60, max(2, $0)) }
            return await serverPage(name, session: s, refresh: refresh)
        }
        router.post("/ui/servers/:name/tools/approve") { request, ctx in
            switch await guarded(request) {
            case .failure(let r): return r.response
            case .success(let (session, form)):
                guard let name = ctx.parameters.get("name"), let tool = form["tool"], !tool.isEmpty else {
                    return Self.page(.badRequest, ConsolePages.message(title: "Bad request", text: "the form names no tool", csrf: session.csrf))
                }
                let outcome = await run {
                    guard let security else { throw ProxyError(.unsupported, "the security layer is not running") }
                    _ = try await security.approveTool(server: name, tool: tool, force: form["force"] == "true", api: rest)
                    return "Approved tool \(tool) of \(name): clients can see and call it."
                }
                return finish(outcome, session: session, server: name, back: form["back"])
            }
        }
        router.post("/ui/servers/:name/:op") { request, ctx in
            switch await guarded(request) {
            case .failure(let r): return r.response
            case .success(let (session, form)):
                guard let name = ctx.parameters.get("name"), let op = ctx.parameters.get("op") else { return Self.redirect("/ui") }
                guard let outcome = await operate(op, on: name, force: form["force"] == "true") else {
                    return Self.page(.notFound, ConsolePages.message(title: "Not found", text: "no console action \"\(op)\"", csrf: session.csrf))
                }
                let gone = op == "reject" && (try? outcome.get()) != nil
                return finish(outcome, session: session, server: gone ? nil : name, back: form["back"])
            }
        }
    }

    /// `/ui/tokens`: list, create (the value is shown once, in the answer to the POST, never
    /// stored for a later page) and revoke agent tokens, through the REST API's functions.
    func registerTokens(on router: Router<BasicRequestContext>) {
        router.get("/ui/tokens") { request, _ in
            guard let s = currentSession(request) else { return Self.redirect("/ui/login") }
            do {
                return Self.page(.ok, ConsolePages.tokens(try rest.tokensJSON(), csrf: s.csrf, flash: sessions.takeFlash(s.id)))
            } catch let e as ProxyError {
                return Self.page(Self.status(of: e), ConsolePages.message(title: "Tokens unavailable", text: e.description, csrf: s.csrf))
            } catch {
                return Self.page(.internalServerError, ConsolePages.message(title: "Error", text: "\(error)", csrf: s.csrf))
            }
        }
        router.post("/ui/tokens") { request, _ in
            switch await guarded(request) {
            case .failure(let r): return r.response
            case .success(let (session, form)):
                var v: [String: JSONValue] = ["name": .string(form["name"] ?? ""), "intent": .string(form["intent"] ?? "read"),
                                              "manage_servers": .bool(form["manage_servers"] == "true")]
                let servers = (form["servers"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                if !servers.isEmpty { v["servers"] = .array(servers.map { .string($0) }) }
                if let exp = form["expires"]?.trimmingCharacters(in: .whitespaces), !exp.isEmpty { v["expires"] = .string(exp) }
                do {
                    let created = try rest.createToken(.object(v), auth: auth)
                    log.info("console: created agent token \(created["name"]?.stringValue ?? "?")")
                    return Self.page(.ok, ConsolePages.tokenCreated(created, csrf: session.csrf))
                } catch let e as ProxyError {
                    sessions.setFlash(session.id, ok: false, e.description)
                } catch {
                    sessions.setFlash(session.id, ok: false, "\(error)")
                }
                return Self.redirect("/ui/tokens")
            }
        }
        router.post("/ui/tokens/revoke") { request, _ in
            switch await guarded(request) {
            case .failure(let r): return r.response
            case .success(let (session, form)):
                let name = form["name"] ?? ""
                do {
                    _ = try rest.revokeToken(name, auth: auth)
                    sessions.setFlash(session.id, ok: true, "Revoked token \(name): it no longer opens /mcp.")
                } catch let e as ProxyError {
                    sessions.setFlash(session.id, ok: false, e.description)
                } catch {
                    sessions.setFlash(session.id, ok: false, "\(error)")
                }
                return Self.redirect("/ui/tokens")
            }
        }
    }

    // MARK: sign-in

    /// The live session of a request's cookie, if any.
    func currentSession(_ request: Request) -> ConsoleSessions.Session? {
        sessions.session(cookies: request.headers[values: .cookie])
    }

    func login(_ request: Request) async -> Response {
        if let why = ConsoleOrigin.check(origin: request.headers[.origin], referer: request.headers[.referer], host: request.head.authority) {
            log.warning("console: refused a sign-in: \(why)")
            return Self.page(.forbidden, ConsolePages.message(title: "Refused", text: "cross-origin request refused: \(why)", csrf: nil))
        }
        guard let form = await Self.form(request) else {
            return Self.page(.badRequest, ConsolePages.login(error: "The form could not be read."))
        }
        let key = (form["key"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        if !key.isEmpty, RESTAPI.constantTimeEqual(key, rest.apiKey) {
            let s = sessions.create()
            log.info("console: signed in with the admin API key")
            var h = HTTPFields()
            h[.setCookie] = sessions.setCookie(s, secure: secureCookies)
            return Self.redirect("/ui", headers: h)
        }
        let metrics = rest.manager.metrics
        if !key.isEmpty, case .ok(let identity) = await auth.authenticate(credential: key), identity.kind != .admin {
            metrics.authFailure(.ui, .forbidden)
            log.notice("console: refused a sign-in by \(identity.label): the console needs the admin API key")
            return Self.page(.forbidden, ConsolePages.login(error: "\(identity.label) may not use the console: it needs the admin API key (agent and OAuth tokens cannot approve tools)."))
        }
        metrics.authFailure(.ui, key.isEmpty ? .missing : .invalid)
        log.notice("console: refused a sign-in: wrong API key")
        var h = HTTPFields()
        h[.wwwAuthenticate] = "Bearer realm=\"mcpproxy\""
        return Self.page(.unauthorized, ConsolePages.login(error: key.isEmpty ? "Enter the admin API key." : "Wrong API key."), headers: h)
    }

    /// The checks before any state-changing request: same origin, a live session, a readable
    /// form, and the session's CSRF token in it.
    func guarded(_ request: Request) async -> Result<(ConsoleSessions.Session, [String: String]), HTTPGateway.Refusal> {
        if let why = ConsoleOrigin.check(origin: request.headers[.origin], referer: request.headers[.referer], host: request.head.authority) {
            log.warning("console: refused \(request.uri.path): \(why)")
            return .failure(.init(response: Self.page(.forbidden, ConsolePages.message(title: "Refused", text: "cross-origin request refused: \(why)", csrf: nil))))
        }
        guard let session = currentSession(request) else { return .failure(.init(response: Self.redirect("/ui/login"))) }
        guard let form = await Self.form(request) else {
            return .failure(.init(response: Self.page(.badRequest, ConsolePages.message(title: "Bad request", text: "the form could not be read", csrf: session.csrf))))
        }
        guard ConsoleSessions.csrfValid(session, presented: form["csrf"]) else {
            log.warning("console: refused \(request.uri.path): missing or wrong CSRF token")
            return .failure(.init(response: Self.page(.forbidden, ConsolePages.message(title: "Refused", text: "the form's CSRF token is missing or wrong; reload the page and try again", csrf: session.csrf))))
        }
        return .success((session, form))
    }

    static func form(_ request: Request) async -> [String: String]? {
        var r = request
        guard let buffer = try? await r.collectBody(upTo: maxForm) else { return nil }
        return HTML.parseForm(String(decoding: buffer.readableBytesView, as: UTF8.self))
    }

    // MARK: actions

    func run(_ body: () async throws -> String) async -> Result<String, ProxyError> {
        do { return .success(try await body()) } catch let e as ProxyError { return .failure(e) } catch {
            return .failure(ProxyError(.internalError, "\(error)"))
        }
    }

    /// One server action; nil for an unknown one. The same functions as the REST routes.
    func operate(_ op: String, on name: String, force: Bool) async -> Result<String, ProxyError>? {
        if let lifecycle = RESTAPI.LifecycleOperation(rawValue: op) {
            return await run {
                _ = try await rest.perform(lifecycle, on: name)
                switch lifecycle {
                case .enable: return "Enabled \(name)."
                case .disable: return "Disabled \(name): it is stopped and stays stopped."
                case .restart: return "Restarting \(name)."
                }
            }
        }
        switch op {
        case "approve":
            return await run {
                guard let security else { throw ProxyError(.unsupported, "the security layer is not running") }
                let result = try await security.approve(name, force: force, api: rest)
                if let message = result["message"]?.stringValue { return "Approved \(name): \(message)." }
                return "Approved \(name): its tools are visible to clients."
            }
        case "quarantine":
            return await run {
                guard let security else { throw ProxyError(.unsupported, "the security layer is not running") }
                _ = try await security.quarantine(name, api: rest)
                return "Quarantined \(name): its tools are hidden from clients."
            }
        case "release":
            return await run {
                _ = try await rest.release(name)
                return "Released \(name) from its monitor hold: it is starting."
            }
        case "reject":
            return await run {
                // Only a server awaiting approval can be rejected; removing a configured server
                // is the config file's business.
                guard rest.manager.pendingServers.contains(where: { $0.name == name }) else {
                    throw ProxyError(.notFound, "no server named \"\(name)\" is awaiting approval")
                }
                _ = try await rest.remove(name)
                return "Rejected \(name): removed without starting it."
            }
        default:
            return nil
        }
    }

    /// Stores the outcome for the next page and redirects where the form came from.
    func finish(_ outcome: Result<String, ProxyError>, session: ConsoleSessions.Session, server: String?, back: String?) -> Response {
        switch outcome {
        case .success(let text): sessions.setFlash(session.id, ok: true, text)
        case .failure(let e): sessions.setFlash(session.id, ok: false, e.description)
        }
        // Only fixed destinations: never a URL taken from the request.
        if back == "server", let server { return Self.redirect(ConsolePages.serverPath(server)) }
        return Self.redirect("/ui")
    }

    // MARK: server page

    func serverPage(_ name: String, session s: ConsoleSessions.Session, refresh: Int?) async -> Response {
        let flash = sessions.takeFlash(s.id)
        if let p = rest.manager.pendingServers.first(where: { $0.name == name }) {
            return Self.page(.ok, ConsolePages.pendingPage(RESTAPI.pendingJSON(p), csrf: s.csrf, flash: flash))
        }
        let up: UpstreamServer
        do { up = try await rest.requireServer(name) } catch let e as ProxyError {
            return Self.page(Self.status(of: e), ConsolePages.message(title: "Not found", text: e.description, csrf: s.csrf))
        } catch {
            return Self.page(.internalServerError, ConsolePages.message(title: "Error", text: "\(error)", csrf: s.csrf))
        }
        let json = await rest.serverJSON(up)
        let tools = rest.toolsJSON(up)
        let sec = try? await security?.security(server: up.name, api: rest)
        let diffs = try? await security?.diffs(server: up.name, api: rest)
        let diagnostics = await rest.diagnostics(up)
        return Self.page(.ok, ConsolePages.serverPage(server: json, tools: tools, security: sec, diffs: diffs, diagnostics: diagnostics,
                                                      csrf: s.csrf, flash: flash, refreshSeconds: refresh))
    }
}


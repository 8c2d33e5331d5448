import Foundation
import Logging
import NIOConcurrencyHelpers
import ProxyCore

/// The state of one tool as the gate sees it.
public enum ToolStatus: String, Sendable, Codable, Equatable {
    /// Pinned at approval and unchanged since: clients may see and call it.
    case approved
    /// New (never approved), without hard findings: held until approved.
    case pending
    /// Its definition or annotations differ from the pinned ones (a possible rug pull): held until
    /// re-approved.
    case changed
    /// Not approved and the scanner has hard findings for it: approval needs `force`.
    case blocked
}

/// The gate's answer for one server's tool list.
public struct ServerVerdict: Sendable, Equatable {
    public var server: String
    /// True: no tool of the server is visible or callable.
    public var quarantined: Bool
    /// Status of every tool in the list, by name.
    public var tools: [String: ToolStatus]
    public var scan: ScanReport
    /// The tools clients may see and call, in the server's order.
    public var visibleTools: [ToolDefinition]
    /// The value the config file's `quarantined` key should hold for this server (the gateway's
    /// config writer persists it after an approval or a quarantine).
    public var configQuarantined: Bool { quarantined }
    /// Set when the security database failed: the server is then treated as quarantined.
    public var storeError: String?
    /// Why the server is quarantined when it is not simply unapproved (e.g. its command changed).
    public var quarantineReason: String?

    /// Names of the visible tools.
    public var visibleToolNames: [String] { visibleTools.map(\.name) }

    /// Why each held tool is held, by tool name; `"*"` holds the whole server (quarantine or a
    /// failed database). The messages say how to approve. Empty when everything is visible.
    public var refusals: [String: String] {
        if let storeError {
            return ["*": "server \"\(server)\": the security database failed, so its tools are held (\(storeError))"]
        }
        if quarantined { return ["*": SecurityGate.quarantineMessage(server, reason: quarantineReason)] }
        var out: [String: String] = [:]
        for (tool, status) in tools where status != .approved {
            out[tool] = SecurityGate.heldMessage(server: server, tool: tool, status: status, scan: scan)
        }
        return out
    }
}

/// Old versus new definition of a held tool, for review before approval.
public struct ToolDiff: Sendable, Equatable, Encodable {
    public var tool: String
    public var status: ToolStatus
    /// Which of `name`, `description`, `inputSchema`, `outputSchema`, `annotations` differ (all
    /// present ones for a new tool).
    public var changedFields: [String]
    /// The pinned definition, nil for a tool never approved.
    public var old: JSONValue?
    /// The definition now offered by the server.
    public var new: JSONValue
    /// The scanner's findings for the new definition.
    public var findings: [Finding]

    enum CodingKeys: String, CodingKey { case tool, status, changedFields = "changed_fields", old, new, findings }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tool, forKey: .tool)
        try c.encode(status, forKey: .status)
        try c.encode(changedFields, forKey: .changedFields)
        try c.encode(old.map(EncodableJSON.init), forKey: .old)
        try c.encode(EncodableJSON(new), forKey: .new)
        try c.encode(findings, forKey: .findings)
    }
}

/// One tool in a server's security status.
public struct ToolSecurityInfo: Sendable, Equatable, Codable {
    public var name: String
    public var status: ToolStatus
    public var fingerprint: String
    public var hardFindings: Int
    public var softFindings: Int

    enum CodingKeys: String, CodingKey { case name, status, fingerprint, hardFindings = "hard_findings", softFindings = "soft_findings" }
}

/// A server's security state for `GET /api/v1/servers` and `mcpproxy scan`.
public struct ServerSecurityStatus: Sendable, Equatable, Codable {
    public var server: String
    /// False when the gate has never seen the server's tools.
    public var known: Bool
    public var quarantined: Bool
    public var tools: [ToolSecurityInfo]
    public var approvedTools: Int
    public var pendingTools: Int
    public var changedTools: Int
    public var blockedTools: Int
    public var scan: ScanReport?
    /// What a person does next, when something is held.
    public var hint: String?
    /// Prompts and resource templates as last listed, with their statuses (nil in summaries).
    public var items: [ItemSecurityInfo]? = nil

    enum CodingKeys: String, CodingKey {
        case server, known, quarantined, tools, approvedTools = "approved_tools", pendingTools = "pending_tools",
             changedTools = "changed_tools", blockedTools = "blocked_tools", scan, hint, items
    }
}

/// Where a person approves things; used in refusal messages so they match the REST routes and CLI.
public enum SecurityRoutes {
    public static func quarantine(_ server: String) -> String { "POST /api/v1/servers/\(server)/quarantine" }
    public static func unquarantine(_ server: String) -> String { "POST /api/v1/servers/\(server)/unquarantine" }
    public static func security(_ server: String) -> String { "GET /api/v1/servers/\(server)/security" }
    public static func diff(_ server: String) -> String { "GET /api/v1/servers/\(server)/tools/diff" }
    public static func approveTool(_ server: String, _ tool: String) -> String { "POST /api/v1/servers/\(server)/tools/\(tool)/approve" }
    public static func cliApprove(_ server: String) -> String { "mcpproxy upstream approve \(server)" }
    public static func cliApproveTool(_ server: String, _ tool: String) -> String { "mcpproxy upstream approve \(server) --tool \(tool)" }
    public static func approveItem(_ server: String, _ kind: ItemKind) -> String {
        kind == .prompt ? "POST /api/v1/servers/\(server)/prompts/approve?name=NAME"
                        : "POST /api/v1/servers/\(server)/resource-templates/approve?uri_template=TEMPLATE"
    }
    public static func cliApproveItem(_ server: String, _ kind: ItemKind, _ name: String) -> String {
        "mcpproxy upstream approve \(server) \(kind == .prompt ? "--prompt" : "--resource-template") '\(name)'"
    }
}

/// The gate between upstream servers and clients: quarantine, tool pinning, scanning and the
/// activity log. The gateway calls `evaluate` whenever it (re)fetches a server's tool list, shows
/// clients only `visibleTools`, asks `callPermission` before forwarding a call and reports the
/// call with `recordCall`. Approvals come from REST and the CLI, never from MCP.
///
/// State machine (docs/security.md): a server is `quarantined` until approved; an approved server's
/// tools are `approved` while they match their pins, `changed` when they drift, `pending` when new,
/// `blocked` when new or changed with hard findings.
public actor SecurityGate {
    let store: SecurityStore
    let log: Logger
    private let scanner: ToolScanner
    private let plugins: [ScannerPluginConfig]
    private let runner: ScannerPluginRunning
    private let logCallArguments: Bool

    typealias Entry = (tools: [ToolDefinition], verdict: ServerVerdict)
    /// The last tool list and verdict per server (the hot path reads only these). Behind a lock
    /// rather than actor state, so status reads (`GET /api/v1/servers`) never queue behind the
    /// evaluations of servers that are starting: with hundreds of them, they waited seconds.
    private nonisolated let currentBox = NIOLockedValueBox<[String: Entry]>([:])
    /// Prompts and resource templates of each server's last listings (SecurityGate+Items.swift).
    nonisolated let itemsBox = NIOLockedValueBox<[String: [ItemKind: JudgedItems]]>([:])
    private nonisolated func entry(_ server: String) -> Entry? { currentBox.withLockedValue { $0[server] } }
    private func setEntry(_ server: String, _ e: Entry?) { currentBox.withLockedValue { $0[server] = e } }
    /// The identity each server had at its last `evaluate`, recorded at approval.
    private var identities: [String: String] = [:]

    /// - Parameters:
    ///   - plugins: Docker-based scanner plugins (`security.scanners`).
    ///   - runner: runs a plugin; the default uses the Docker CLI.
    ///   - logCallArguments: the `log_call_arguments` config key, used by
    ///     `recordCall(server:tool:durationMs:outcome:requestID:arguments:)`.
    public init(store: SecurityStore, log: Logger, plugins: [ScannerPluginConfig] = [],
                runner: ScannerPluginRunning = DockerScannerRunner(), scanner: ToolScanner = ToolScanner(),
                logCallArguments: Bool = false) {
        self.logCallArguments = logCallArguments
        self.store = store
        self.log = log
        self.plugins = plugins
        self.runner = runner
        self.scanner = scanner
    }

    /// Call whenever a server's tool list is (re)fetched (connect, `tools/list_changed`, reload).
    ///
    /// - Parameters:
    ///   - configQuarantined: the server's `quarantined` config value. `true` quarantines it,
    ///     `false` trusts it (pinning its tools on first sight if none are pinned), nil defers to
    ///     the stored state, and a server never seen before starts quarantined.
    ///   - isolationMode: the server's resolved isolation mode (Docker-based scanner plugins run
    ///     only under `docker`; otherwise they are reported skipped and the scan is `degraded`).
    ///   - otherServers: every other server's tool names, for the shadowing rules.
    public func evaluate(server: String, configQuarantined: Bool?, tools: [ToolDefinition],
                         isolationMode: IsolationMode, otherServers: [String: [String]]) async -> ServerVerdict {
        await evaluate(server: server, configQuarantined: configQuarantined, identity: nil, tools: tools,
                       isolationMode: isolationMode, otherServers: otherServers)
    }

    /// `evaluate` from the server's config: also binds the approval to `ServerIdentity.of(config)`,
    /// so a server whose command, arguments, URL or image changed is quarantined again until a
    /// person approves it (whatever the config's `quarantined` says). Prefer this form.
    public func evaluate(server config: ServerConfig, tools: [ToolDefinition], isolationMode: IsolationMode,
                         otherServers: [String: [String]]) async -> ServerVerdict {
        await evaluate(server: config.name, configQuarantined: config.quarantined, identity: ServerIdentity.of(config),
                       tools: tools, isolationMode: isolationMode, otherServers: otherServers)
    }

    /// Scanning is pure and CPU-bound: it runs off the gate's actor (on the shared pool, several
    /// servers at once), so REST status reads and other servers' verdicts do not queue behind it.
    /// With hundreds of servers starting, scanning on the actor kept `GET /api/v1/servers`
    /// waiting for every scan in the queue.
    /// The tools' fingerprints are computed off the actor too (`printsOffActor`), once per evaluation.
    private static func scanOffActor(_ scanner: ToolScanner, server: String, tools: [ToolDefinition],
                                     otherServers: [String: [String]]) async -> ScanReport {
        scanner.scan(server: server, tools: tools, otherServers: otherServers)
    }

    /// The general form; `identity` nil skips the identity check.
    ///
    /// Fast path: when every tool matches its pin on an approved server, each tool's status is
    /// `approved` whatever the scan finds (a pinned, unchanged definition is what a person
    /// approved), so the verdict is answered at once from the fingerprints and the scan runs
    /// after it, recording its report (and the tools seen) unless a newer evaluation of the
    /// server started meanwhile. A proxy restart with 10,000 approved tools no longer waits for
    /// the scan.
    public func evaluate(server: String, configQuarantined: Bool?, identity: String?, tools: [ToolDefinition],
                         isolationMode: IsolationMode, otherServers: [String: [String]]) async -> ServerVerdict {
        generations[server, default: 0] += 1
        let generation = generations[server]!
        let prints = await Self.printsOffActor(tools)
        if generations[server] == generation,
           let fast = pinnedVerdict(server: server, configQuarantined: configQuarantined, identity: identity, tools: tools, prints: prints) {
            setEntry(server, (tools, fast))
            if let identity { identities[server] = identity }
            Task {
                _ = await self.evaluateFully(server: server, configQuarantined: configQuarantined, identity: identity, tools: tools,
                                             prints: prints, isolationMode: isolationMode, otherServers: otherServers,
                                             generation: generation)
            }
            return fast
        }
        return await evaluateFully(server: server, configQuarantined: configQuarantined, identity: identity, tools: tools,
                                   prints: prints, isolationMode: isolationMode, otherServers: otherServers, generation: nil)
            ?? ServerVerdict(server: server, quarantined: true, tools: [:], scan: ScanReport(server: server, findings: []), visibleTools: [])
    }

    /// Evaluations started per server: a background scan whose evaluation is no longer the
    /// newest records nothing.
    private var generations: [String: Int] = [:]

    private static func printsOffActor(_ tools: [ToolDefinition]) async -> [ToolFingerprint.Prints] {
        ToolFingerprint.prints(tools)
    }

    /// The verdict when every tool is pinned and unchanged on an approved server whose identity
    /// is the approved one; nil when anything else holds (the full evaluation decides).
    private func pinnedVerdict(server: String, configQuarantined: Bool?, identity: String?, tools: [ToolDefinition],
                               prints: [ToolFingerprint.Prints]) -> ServerVerdict? {
        guard !tools.isEmpty, configQuarantined != true,
              let stored = try? store.server(server), !stored.quarantined, !stored.pinOnNextSight,
              identity == nil || stored.identity == nil || stored.identity == identity,
              let pins = try? store.pinPrints(server: server), pins.count >= tools.count else { return nil }
        for (t, p) in zip(tools, prints) {
            guard let pin = pins[t.name], pin.fingerprint == p.fingerprint, pin.annotationsHash == p.annotations else { return nil }
        }
        let report = entry(server)?.verdict.scan ?? (try? store.scan(server: server)) ?? ScanReport(server: server, findings: [])
        let v = SecurityGate.verdict(server: server, quarantined: false, tools: tools, pinned: pins, prints: prints, report: report)
        return v.visibleTools.count == tools.count ? v : nil
    }

    /// The scan, plugins and state update. With `generation`, nothing is recorded (nil is
    /// returned) when a newer evaluation of the server started meanwhile.
    private func evaluateFully(server: String, configQuarantined: Bool?, identity: String?, tools: [ToolDefinition],
                               prints: [ToolFingerprint.Prints], isolationMode: IsolationMode, otherServers: [String: [String]],
                               generation: Int?) async -> ServerVerdict? {
        var report = await Self.scanOffActor(scanner, server: server, tools: tools, otherServers: otherServers)
        for plugin in plugins {
            if let reason = ScannerPluginPlanner.skipReason(plugin, mode: isolationMode) {
                log.warning("Docker-based scanner plugin skipped", metadata: ["server": "\(server)", "scanner": "\(plugin.name)",
                                                                            "isolation_mode": "\(isolationMode.rawValue)"])
                report.merge(findings: [], skipped: [SkippedScanner(name: plugin.name, reason: reason)], ranScanner: nil)
                continue
            }
            do {
                let out = try await runner.run(plugin, input: ScannerPluginPlanner.input(server: server, tools: tools))
                report.merge(findings: try ScannerPluginPlanner.parseOutput(out, plugin: plugin.name), skipped: [], ranScanner: plugin.name)
            } catch {
                log.error("scanner plugin failed", metadata: ["server": "\(server)", "scanner": "\(plugin.name)", "error": "\(error)"])
                report.merge(findings: [], skipped: [SkippedScanner(name: plugin.name, reason: "failed: \(error)")], ranScanner: nil)
            }
        }
        // No await below this line: the state update is atomic with respect to other callers.
        if let generation, generations[server] != generation { return nil }
        let verdict: ServerVerdict
        do {
            verdict = try update(server: server, configQuarantined: configQuarantined, identity: identity, tools: tools,
                                 prints: prints, report: report)
        } catch {
            log.error("security database failed; server held in quarantine", metadata: ["server": "\(server)", "error": "\(error)"])
            verdict = ServerVerdict(server: server, quarantined: true,
                                    tools: Dictionary(uniqueKeysWithValues: tools.map { ($0.name, ToolStatus.pending) }),
                                    scan: report, visibleTools: [], storeError: "\(error)")
        }
        setEntry(server, (tools, verdict))
        if let identity { identities[server] = identity }
        if verdict.quarantined {
            log.info("server quarantined: tools hidden until approved", metadata: ["server": "\(server)", "tools": "\(tools.count)",
                                                                                 "hard_findings": "\(report.hardFindings.count)"])
        } else {
            let held = verdict.tools.filter { $0.value != .approved }
            if !held.isEmpty {
                log.warning("tools held until approved", metadata: ["server": "\(server)",
                    "held": "\(held.keys.sorted().map { "\($0)=\(held[$0]!.rawValue)" }.joined(separator: ","))"])
            }
        }
        return verdict
    }

    private func update(server: String, configQuarantined: Bool?, identity: String?, tools: [ToolDefinition],
                        prints: [ToolFingerprint.Prints], report: ScanReport) throws -> ServerVerdict {
        let stored = try store.server(server)
        var pins = try store.pinPrints(server: server)
        let quarantined: Bool
        var pinNow: Bool
        // The identity recorded at approval differs: a different program now answers to this
        // name (an edited command, a swapped image). Quarantine, whatever the config says, until
        // a person approves it; the recorded identity changes only at approval.
        let identityChanged = identity != nil && stored?.identity != nil && stored?.identity != identity
        switch identityChanged ? true : configQuarantined {
        case true?:
            quarantined = true
            pinNow = false
        case false?:
            // Trusted by the config: pin on first sight unless approvals already exist.
            quarantined = false
            pinNow = pins.isEmpty && (stored == nil || stored!.pinOnNextSight || stored!.quarantined)
        case nil:
            quarantined = stored?.quarantined ?? true
            pinNow = !quarantined && (stored?.pinOnNextSight ?? false)
        }
        if pinNow && !tools.isEmpty {
            // Trust on first use, but never for tools the scanner blocks. An empty list (a server
            // still starting or restarting) keeps the pending pin for the first real list.
            let hard = Set(report.hardFindings.map(\.tool))
            let pinned = zip(tools, prints).filter { !hard.contains($0.0.name) }
            try store.pin(server: server, tools: pinned.map(\.0), prints: pinned.map(\.1))
            pins = try store.pinPrints(server: server)
            pinNow = false
        }
        let adoptIdentity = identity != nil && stored?.identity == nil
        if stored?.quarantined != quarantined || stored?.pinOnNextSight != pinNow || adoptIdentity {
            try store.setServer(server, quarantined: quarantined, pinOnNextSight: pinNow, identity: adoptIdentity ? identity : nil)
        }
        try store.replaceObserved(server: server, tools: tools, prints: prints)
        try store.saveScan(report)
        var v = SecurityGate.verdict(server: server, quarantined: quarantined, tools: tools, pinned: pins, prints: prints, report: report)
        if identityChanged {
            v.quarantineReason = "its command, arguments, URL or image changed since it was approved"
            log.warning("server identity changed since approval; quarantined", metadata: ["server": "\(server)"])
        }
        return v
    }

    /// The pure part: tool statuses and visibility from pins and the scan.
    static func verdict(server: String, quarantined: Bool, tools: [ToolDefinition], pins: [String: StoredTool],
                        report: ScanReport) -> ServerVerdict {
        verdict(server: server, quarantined: quarantined, tools: tools, pinned: pins.mapValues { ($0.fingerprint, $0.annotationsHash) },
                prints: nil, report: report)
    }

    /// `verdict` from the pins' fingerprints only; `prints` (when known) are the tools'
    /// `ToolFingerprint.prints`, in order.
    static func verdict(server: String, quarantined: Bool, tools: [ToolDefinition],
                        pinned pins: [String: (fingerprint: String, annotationsHash: String)],
                        prints: [ToolFingerprint.Prints]?, report: ScanReport) -> ServerVerdict {
        var statuses: [String: ToolStatus] = [:]
        statuses.reserveCapacity(tools.count)
        let hard = Set(report.hardFindings.map(\.tool))
        for (i, t) in tools.enumerated() {
            if let pin = pins[t.name] {
                let fingerprint = prints?[i].fingerprint ?? ToolFingerprint.of(t)
                let annotations = prints?[i].annotations ?? ToolFingerprint.annotations(t)
                let same = pin.fingerprint == fingerprint && pin.annotationsHash == annotations
                statuses[t.name] = same ? .approved : (hard.contains(t.name) ? .blocked : .changed)
            } else {
                statuses[t.name] = hard.contains(t.name) ? .blocked : .pending
            }
        }
        let visible = quarantined ? [] : tools.filter { statuses[$0.name] == .approved }
        return ServerVerdict(server: server, quarantined: quarantined, tools: statuses, scan: report, visibleTools: visible)
    }

    /// The last verdict for a server, nil before its first `evaluate`.
    public func verdict(server: String) -> ServerVerdict? { entry(server)?.verdict }

    /// Whether a call may be forwarded. The refusal names the reason and how to approve.
    public func callPermission(server: String, tool: String) -> Result<Void, ProxyError> {
        guard let entry = self.entry(server) else {
            return .failure(ProxyError(.refused, "server \"\(server)\" has not been inspected yet; its tools are held until it connects and is approved"))
        }
        let v = entry.verdict
        if let e = v.storeError {
            return .failure(ProxyError(.unavailable, "server \"\(server)\": the security database failed, so its tools are held", detail: e))
        }
        if v.quarantined { return .failure(ProxyError(.refused, SecurityGate.quarantineMessage(server, reason: v.quarantineReason))) }
        guard let status = v.tools[tool] else {
            return .failure(ProxyError(.notFound, "server \"\(server)\" has no tool \"\(tool)\""))
        }
        if status == .approved { return .success(()) }
        return .failure(ProxyError(.refused, SecurityGate.heldMessage(server: server, tool: tool, status: status, scan: v.scan)))
    }

    static func quarantineMessage(_ server: String, reason: String? = nil) -> String {
        "server \"\(server)\" is quarantined\(reason.map { " (\($0))" } ?? ""): its tools are held until a person reviews and approves it. "
            + "Review: \(SecurityRoutes.security(server)). Approve: `\(SecurityRoutes.cliApprove(server))` or \(SecurityRoutes.unquarantine(server))"
    }

    static func heldMessage(server: String, tool: String, status: ToolStatus, scan: ScanReport) -> String {
        switch status {
        case .approved:
            return "tool \"\(tool)\" of server \"\(server)\" is approved"
        case .changed:
            return "tool \"\(tool)\" of server \"\(server)\" changed since it was approved (possible rug pull) and is held. "
                + "Review the diff: \(SecurityRoutes.diff(server)). Approve: `\(SecurityRoutes.cliApproveTool(server, tool))` or \(SecurityRoutes.approveTool(server, tool))"
        case .pending:
            return "tool \"\(tool)\" of server \"\(server)\" is new since the server was approved and is held. "
                + "Review: \(SecurityRoutes.diff(server)). Approve: `\(SecurityRoutes.cliApproveTool(server, tool))` or \(SecurityRoutes.approveTool(server, tool))"
        case .blocked:
            let rules = Set(scan.findings(forTool: tool).filter { $0.severity == .hard }.map(\.ruleID)).sorted().joined(separator: ", ")
            return "tool \"\(tool)\" of server \"\(server)\" is blocked: the scanner found \(rules). "
                + "Review: \(SecurityRoutes.security(server)). To approve it anyway: `\(SecurityRoutes.cliApproveTool(server, tool)) --force` or \(SecurityRoutes.approveTool(server, tool))?force=true"
        }
    }

    /// Approves (unquarantines) a server and pins exactly the tool definitions a person could
    /// review: the current ones. A server that reported no tools (or was never seen) gets no
    /// pins, so tools that appear later are held as `pending` until approved one by one; an
    /// approval never covers tools nobody saw. Refused when the scan has hard findings, unless
    /// `force`. The gateway then writes `"quarantined": false` to the config.
    @discardableResult
    public func approveServer(_ name: String, force: Bool = false) throws -> ServerVerdict? {
        let tools = try currentTools(name) ?? []
        let report = try entry(name)?.verdict.scan ?? store.scan(server: name)
        let hard = report?.hardFindings ?? []
        if !hard.isEmpty && !force {
            throw ProxyError(.refused, "server \"\(name)\" was not approved: the scanner has \(hard.count) hard finding(s): "
                + SecurityGate.summary(hard) + ". Review: \(SecurityRoutes.security(name)); to approve anyway use --force (or ?force=true)")
        }
        let hardTools = Set(hard.map(\.tool))
        try store.pin(server: name, tools: tools.filter { !hardTools.contains($0.name) })
        try store.pin(server: name, tools: tools.filter { hardTools.contains($0.name) }, forced: true)
        try store.setServer(name, quarantined: false, pinOnNextSight: false, identity: identities[name])
        try resetItems(server: name)
        log.notice("server approved", metadata: ["server": "\(name)", "forced": "\(force)", "tools": "\(tools.count)"])
        return try refresh(name)
    }

    /// Quarantines a server: its tools disappear and calls are refused until it is approved again.
    /// Pins are kept (re-approval re-pins the then-current tools). The gateway then writes
    /// `"quarantined": true` to the config.
    @discardableResult
    public func quarantineServer(_ name: String) throws -> ServerVerdict? {
        try store.setServer(name, quarantined: true, pinOnNextSight: false)
        log.notice("server quarantined", metadata: ["server": "\(name)"])
        return try refresh(name)
    }

    /// Approves one tool's current definition (a new or changed tool). Refused when the scanner
    /// has hard findings for it, unless `force`.
    @discardableResult
    public func approveTool(server: String, tool: String, force: Bool = false) throws -> ServerVerdict? {
        guard let tools = try currentTools(server) else {
            throw ProxyError(.notFound, "server \"\(server)\" has not been inspected yet; approve it once it has connected")
        }
        guard let def = tools.first(where: { $0.name == tool }) else {
            throw ProxyError(.notFound, "server \"\(server)\" has no tool \"\(tool)\"")
        }
        let hard = (try entry(server)?.verdict.scan ?? store.scan(server: server))?.findings(forTool: tool).filter { $0.severity == .hard } ?? []
        if !hard.isEmpty && !force {
            throw ProxyError(.refused, "tool \"\(tool)\" of server \"\(server)\" was not approved: the scanner has hard findings: "
                + SecurityGate.summary(hard) + "; to approve anyway use --force (or ?force=true)")
        }
        try store.pin(server: server, tools: [def], forced: !hard.isEmpty)
        log.notice("tool approved", metadata: ["server": "\(server)", "tool": "\(tool)", "forced": "\(!hard.isEmpty)"])
        return try refresh(server)
    }

    /// Old versus new for every held (changed, pending or blocked) tool of a server.
    public func toolDiffs(server: String) -> [ToolDiff] {
        guard let tools = try? currentTools(server), let pins = try? store.pins(server: server) else { return [] }
        let verdict = entry(server)?.verdict
        let report = verdict?.scan ?? (try? store.scan(server: server)) ?? ScanReport(server: server, findings: [])
        let quarantined = verdict?.quarantined ?? ((try? store.server(server))?.quarantined ?? true)
        let v = SecurityGate.verdict(server: server, quarantined: quarantined, tools: tools, pins: pins, report: report)
        var out: [ToolDiff] = []
        for t in tools {
            guard let status = v.tools[t.name], status != .approved else { continue }
            let new = ToolFingerprint.storedDefinition(t)
            let old = pins[t.name]?.definition
            let keys = ["name", "description", "inputSchema", "outputSchema", "annotations"]
            let changed = keys.filter { k in
                let n = new[k] ?? .null
                guard let old else { return n != .null }
                return (old[k] ?? .null) != n
            }
            out.append(ToolDiff(tool: t.name, status: status, changedFields: changed, old: old, new: new,
                                findings: report.findings(forTool: t.name)))
        }
        return out
    }

    /// `status(server:)` without the per-tool list: the counts, scan and hint, from the verdict in
    /// force when there is one (no fingerprints recomputed, no pins read). What server listings
    /// show; `/api/v1/servers` is polled (`mcpproxy status --watch`, the console), and a full
    /// status of a 10,000-tool server costs every tool's fingerprint.
    public nonisolated func summary(server: String) -> ServerSecurityStatus {
        guard let current = entry(server) else { return status(server: server) }
        let v = current.verdict
        func count(_ st: ToolStatus) -> Int { v.tools.values.filter { $0 == st }.count }
        return ServerSecurityStatus(server: server, known: true, quarantined: v.quarantined, tools: [],
                                    approvedTools: count(.approved), pendingTools: count(.pending), changedTools: count(.changed),
                                    blockedTools: count(.blocked), scan: v.scan,
                                    hint: Self.hint(server: server, quarantined: v.quarantined,
                                                    held: count(.changed) + count(.pending) + count(.blocked)))
    }

    static func hint(server: String, quarantined: Bool, held: Int) -> String? {
        if quarantined {
            return "quarantined: review the scan, then `\(SecurityRoutes.cliApprove(server))` or \(SecurityRoutes.unquarantine(server))"
        } else if held > 0 {
            return "tools held: review \(SecurityRoutes.diff(server)), then approve each with `\(SecurityRoutes.cliApproveTool(server, "TOOL"))`"
        }
        return nil
    }

    /// A server's security state for the REST API and the CLI.
    public nonisolated func status(server: String) -> ServerSecurityStatus {
        let stored = try? store.server(server)
        let tools = (try? currentTools(server)) ?? nil
        let current = entry(server)
        let report = current?.verdict.scan ?? (try? store.scan(server: server)) ?? nil
        let quarantined = current?.verdict.quarantined ?? stored?.quarantined ?? true
        var infos: [ToolSecurityInfo] = []
        if let tools {
            let pins = (try? store.pins(server: server)) ?? [:]
            let r = report ?? ScanReport(server: server, findings: [])
            let v = SecurityGate.verdict(server: server, quarantined: quarantined, tools: tools, pins: pins, report: r)
            infos = tools.map { t in
                let f = r.findings(forTool: t.name)
                return ToolSecurityInfo(name: t.name, status: v.tools[t.name] ?? .pending, fingerprint: ToolFingerprint.of(t),
                                        hardFindings: f.filter { $0.severity == .hard }.count,
                                        softFindings: f.filter { $0.severity == .soft }.count)
            }
        }
        func count(_ s: ToolStatus) -> Int { infos.filter { $0.status == s }.count }
        let hint = Self.hint(server: server, quarantined: quarantined, held: count(.changed) + count(.pending) + count(.blocked))
        return ServerSecurityStatus(server: server, known: stored != nil || tools != nil, quarantined: quarantined, tools: infos,
                                    approvedTools: count(.approved), pendingTools: count(.pending), changedTools: count(.changed),
                                    blockedTools: count(.blocked), scan: report, hint: hint, items: items(server: server))
    }

    /// Records a finished tool call in the activity log. Arguments are stored by size and SHA-256
    /// only, unless `logArguments` (the `log_call_arguments` config key). Failures are not
    /// thrown (the activity log must not break calls): the store's write health counts them, and
    /// the console gets one line when writes start failing and one when they recover.
    public func recordCall(server: String, tool: String, durationMs: Double, outcome: ActivityOutcome,
                           requestID: String, argumentsBytes: Data?, logArguments: Bool) {
        let record = ActivityRecord(
            id: nil, at: Date().timeIntervalSince1970, server: server, tool: tool, durationMs: durationMs, outcome: outcome,
            requestID: requestID, argumentsBytes: argumentsBytes?.count,
            argumentsSHA256: argumentsBytes.map { ToolFingerprint.sha256Hex($0) },
            arguments: logArguments ? argumentsBytes.map { String(decoding: $0.prefix(65536), as: UTF8.self) } : nil)
        do { try store.appendActivity(record) } catch {
            log.debug("activity log write failed", metadata: ["server": "\(server)", "tool": "\(tool)", "error": "\(error)"])
        }
    }

    /// One finished call, for `recordCalls`.
    public struct CallRecord: Sendable {
        public var at: Double, server: String, tool: String, durationMs: Double, outcome: ActivityOutcome, requestID: String
        public var arguments: [UInt8]?
        /// Who made the call (`Identity.label`).
        public var caller: String?
        public init(at: Double, server: String, tool: String, durationMs: Double, outcome: ActivityOutcome, requestID: String,
                    arguments: [UInt8]?, caller: String? = nil) {
            self.at = at; self.server = server; self.tool = tool; self.durationMs = durationMs
            self.outcome = outcome; self.requestID = requestID; self.arguments = arguments; self.caller = caller
        }
    }

    /// Records several finished calls in one database transaction.
    public func recordCalls(_ calls: [CallRecord]) {
        let records = calls.map { c in
            ActivityRecord(id: nil, at: c.at, server: c.server, tool: c.tool, durationMs: c.durationMs, outcome: c.outcome,
                           requestID: c.requestID, argumentsBytes: c.arguments?.count,
                           argumentsSHA256: c.arguments.map { ToolFingerprint.sha256Hex(Data($0)) },
                           arguments: logCallArguments ? c.arguments.map { String(decoding: $0.prefix(65536), as: UTF8.self) } : nil,
                           caller: c.caller)
        }
        do { try store.appendActivity(records) } catch {
            log.debug("activity log write failed", metadata: ["calls": "\(calls.count)", "error": "\(error)"])
        }
    }

    /// `recordCall` with the arguments' raw bytes and the `logCallArguments` given at init.
    public func recordCall(server: String, tool: String, durationMs: Double, outcome: ActivityOutcome, requestID: String,
                           arguments: [UInt8]?) {
        recordCall(server: server, tool: tool, durationMs: durationMs, outcome: outcome, requestID: requestID,
                   argumentsBytes: arguments.map { Data($0) }, logArguments: logCallArguments)
    }

    /// The newest activity entries, newest first.
    public func activity(server: String? = nil, limit: Int = 100) -> Result<[ActivityRecord], ProxyError> {
        do { return .success(try store.activity(server: server, limit: limit)) } catch let e as ProxyError {
            return .failure(e)
        } catch { return .failure(ProxyError(.internalError, "activity log read failed", cause: error)) }
    }

    /// Forgets a server that was removed from the config.
    public func forget(server: String) throws {
        setEntry(server, nil)
        itemsBox.withLockedValue { $0[server] = nil }
        try store.deleteServer(server)
    }

    // MARK: Helpers

    /// The tools last seen from a server: in memory, or from the store after a restart.
    private nonisolated func currentTools(_ server: String) throws -> [ToolDefinition]? {
        if let c = entry(server) { return c.tools }
        let observed = try store.observed(server: server)
        guard !observed.isEmpty else { return nil }
        return observed.values.sorted { $0.tool < $1.tool }.map { s in
            let d = s.definition
            return ToolDefinition(name: s.tool, description: d["description"]?.stringValue ?? "",
                                  inputSchema: d["inputSchema"] ?? .object(["type": "object"]),
                                  outputSchema: d["outputSchema"].flatMap { $0 == .null ? nil : $0 },
                                  annotations: d["annotations"].flatMap { $0 == .null ? nil : $0 })
        }
    }

    /// Recomputes the cached verdict after an approval or quarantine.
    private func refresh(_ server: String) throws -> ServerVerdict? {
        guard let entry = self.entry(server) else { return nil }
        let stored = try store.server(server)
        let v = SecurityGate.verdict(server: server, quarantined: stored?.quarantined ?? true, tools: entry.tools,
                                     pins: try store.pins(server: server), report: entry.verdict.scan)
        setEntry(server, (entry.tools, v))
        return v
    }

    static func summary(_ findings: [Finding]) -> String {
        findings.prefix(5).map { "\($0.tool): \($0.ruleID)" }.joined(separator: "; ") + (findings.count > 5 ? "; …" : "")
    }
}

/// Encodes a `JSONValue` with `Encodable` (for REST responses built with `JSONEncoder`).
public struct EncodableJSON: Encodable, Sendable {
    public let value: JSONValue
    public init(_ value: JSONValue) { self.value = value }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch value {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            if n == n.rounded(), abs(n) < 9.0e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a.map(EncodableJSON.init))
        case .object(let o): try c.encode(o.mapValues(EncodableJSON.init))
        }
    }
}

import Foundation
import ProxyCore

/// What else a server offers the model besides tools, as the gate sees it.
public enum ItemKind: String, Sendable, Codable, CaseIterable {
    /// Prompts: text a client shows as commands and sends to the model. Pinned.
    case prompt
    /// Resource templates: their names and descriptions reach the model. Pinned.
    case resourceTemplate = "resource_template"
    /// Concrete resources: screened, never pinned. Their list is data (files, rows) that changes
    /// with content; holding every new one for approval would hold the data itself.
    case resource

    public var pinned: Bool { self != .resource }
    /// For messages: "prompt", "resource template", "resource".
    public var label: String { rawValue.replacingOccurrences(of: "_", with: " ") }
}

/// One prompt or resource template in a server's security status.
public struct ItemSecurityInfo: Sendable, Equatable, Codable {
    public var kind: ItemKind
    public var name: String
    public var status: ToolStatus
}

/// The items of one kind a server offered at its last listing, and their statuses.
struct JudgedItems: Sendable {
    var items: [ToolDefinition]
    var statuses: [String: ToolStatus]
    var hard: Set<String>
}

/// Prompts and resource templates are pinned like tools (docs/security.md, "Prompts and
/// resources"): at the first listing after a server is approved (or trusted by the config) its
/// items are pinned; later an item whose text differs from its pin is `changed` (a possible rug
/// pull), a new one `pending`, one with hard scanner findings `blocked`; only `approved` ones
/// reach clients. A person approves one with `mcpproxy upstream approve SERVER --prompt NAME`
/// (or `--resource-template`) or the REST route. Items of a quarantined server are never listed,
/// so never judged.
extension SecurityGate {
    /// The pure part: statuses from pins and hard findings.
    static func itemStatuses(_ items: [(name: String, fingerprint: String)], pins: [String: String],
                             hard: Set<String>) -> [String: ToolStatus] {
        var out: [String: ToolStatus] = [:]
        for i in items {
            if let pin = pins[i.name] {
                out[i.name] = pin == i.fingerprint ? .approved : (hard.contains(i.name) ? .blocked : .changed)
            } else {
                out[i.name] = hard.contains(i.name) ? .blocked : .pending
            }
        }
        return out
    }

    /// An item's fingerprint: that of its screenable form (name, text, arguments), so any change
    /// to what the model reads changes it.
    static func itemPrint(_ item: ToolDefinition) -> (fingerprint: String, definition: String) {
        let canonical = ToolFingerprint.canonical(item)
        return (ToolFingerprint.sha256Hex(canonical.serialized()), canonical.serialized())
    }

    /// Judges one listing of a server's items of `kind` (`hard`: the names the scanner holds).
    /// The first listing of a kind after approval pins every item without hard findings.
    public func judge(server: String, kind: ItemKind, items: [ToolDefinition], hard: Set<String>) -> [String: ToolStatus] {
        let statuses: [String: ToolStatus]
        if !kind.pinned {
            statuses = Dictionary(items.map { ($0.name, hard.contains($0.name) ? ToolStatus.blocked : .approved) },
                                  uniquingKeysWith: { a, _ in a })
        } else {
            let prints = items.map { ($0.name, Self.itemPrint($0)) }
            do {
                var (pins, baseline) = try store.itemPins(server: server, kind: kind.rawValue)
                if !baseline {
                    let trusted = prints.filter { !hard.contains($0.0) }
                    try store.pinItems(server: server, kind: kind.rawValue,
                                       items: trusted.map { ($0.0, $0.1.fingerprint, $0.1.definition) }, baseline: true)
                    if !trusted.isEmpty {
                        log.notice("pinned \(trusted.count) \(kind.label)(s) of server \"\(server)\" at first sight after approval")
                    }
                    for t in trusted { pins[t.0] = t.1.fingerprint }
                }
                statuses = Self.itemStatuses(prints.map { ($0.0, $0.1.fingerprint) }, pins: pins, hard: hard)
            } catch {
                log.error("security database failed; \(kind.label)s of server \"\(server)\" held", metadata: ["error": "\(error)"])
                statuses = Dictionary(items.map { ($0.name, ToolStatus.pending) }, uniquingKeysWith: { a, _ in a })
            }
        }
        let before = itemsBox.withLockedValue { box -> [String: ToolStatus]? in
            defer { box[server, default: [:]][kind] = JudgedItems(items: items, statuses: statuses, hard: hard) }
            return box[server]?[kind]?.statuses
        }
        if before != statuses {
            for (name, st) in statuses.sorted(by: { $0.key < $1.key }) where st != .approved && before?[name] != st {
                log.warning("held \(kind.label) \"\(name)\" of server \"\(server)\": \(st.rawValue)")
            }
        }
        return statuses
    }

    /// Why an item is held, for the refusal a client gets, saying how a person approves it.
    public static func itemHeldMessage(server: String, kind: ItemKind, name: String, status: ToolStatus) -> String {
        let what = "\(kind.label) \"\(name)\" of server \"\(server)\""
        let approve = "`\(SecurityRoutes.cliApproveItem(server, kind, name))` or \(SecurityRoutes.approveItem(server, kind))"
        switch status {
        case .approved: return "\(what) is approved"
        case .changed: return "\(what) changed since it was approved (possible rug pull) and is held. Review: \(SecurityRoutes.security(server)). Approve: \(approve)"
        case .pending: return "\(what) is new since the server was approved and is held. Review: \(SecurityRoutes.security(server)). Approve: \(approve)"
        case .blocked: return "\(what) is held: the scanner found hard findings in it. Review: \(SecurityRoutes.security(server)). To approve it anyway: \(approve) with force"
        }
    }

    /// Approves one item as last listed. Refused for one with hard findings unless `force`.
    public func approveItem(server: String, kind: ItemKind, name: String, force: Bool = false) throws {
        guard kind.pinned else { throw ProxyError(.invalidArgument, "resources are screened, not pinned: there is nothing to approve") }
        guard let judged = itemsBox.withLockedValue({ $0[server]?[kind] }),
              let item = judged.items.first(where: { $0.name == name }) else {
            throw ProxyError(.notFound, "server \"\(server)\" has listed no \(kind.label) \"\(name)\" since the proxy started; list them first (prompts/list or resources/templates/list), then approve")
        }
        let hard = judged.hard.contains(name)
        if hard && !force {
            throw ProxyError(.refused, "\(kind.label) \"\(name)\" of server \"\(server)\" was not approved: the scanner has hard findings in it; to approve anyway use --force (or ?force=true)")
        }
        let p = Self.itemPrint(item)
        try store.pinItems(server: server, kind: kind.rawValue, items: [(name, p.fingerprint, p.definition)], forced: hard)
        itemsBox.withLockedValue { $0[server]?[kind]?.statuses[name] = .approved }
        log.notice("\(kind.label) approved", metadata: ["server": "\(server)", "name": "\(name)", "forced": "\(hard)"])
    }

    /// The prompts and resource templates of a server's last listings, with their statuses.
    public nonisolated func items(server: String) -> [ItemSecurityInfo] {
        let judged = itemsBox.withLockedValue { $0[server] ?? [:] }
        var out: [ItemSecurityInfo] = []
        for kind in ItemKind.allCases where kind.pinned {
            for (name, st) in (judged[kind]?.statuses ?? [:]).sorted(by: { $0.key < $1.key }) {
                out.append(ItemSecurityInfo(kind: kind, name: name, status: st))
            }
        }
        return out
    }

    /// At approval: the items the server lists next are pinned as approved.
    func resetItems(server: String) throws {
        try store.clearItemBaselines(server: server)
        itemsBox.withLockedValue { $0[server] = nil }
    }
}

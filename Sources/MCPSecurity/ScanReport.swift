import Foundation

/// One problem the scanner found in a tool definition.
public struct Finding: Sendable, Codable, Equatable, Hashable {
    /// How bad a finding is: `hard` blocks approval (unless forced), `soft` is a warning.
    public enum Severity: String, Sendable, Codable, Equatable, Hashable {
        case hard, soft
    }

    /// Where in a field the offending text is: `[start, end)` in Unicode scalars of the field's text.
    public struct Span: Sendable, Codable, Equatable, Hashable {
        public var start: Int
        public var end: Int
        public init(start: Int, end: Int) { self.start = start; self.end = end }
    }

    /// A stable rule identifier such as `unicode.tag-characters` (see docs/security.md).
    public var ruleID: String
    public var severity: Severity
    /// The tool's name on its server.
    public var tool: String
    /// The field the text came from: `name`, `description`, or a schema path such as
    /// `inputSchema.properties.notes.description`.
    public var field: String
    public var span: Span
    /// The offending text, with invisible characters made visible (`<U+200B>`) and hidden tag
    /// text decoded, cut to a readable length.
    public var excerpt: String
    /// What the rule means, in words a reviewer can act on.
    public var message: String
    /// The scanner that produced the finding: `builtin` or a plugin's name.
    public var scanner: String

    public init(ruleID: String, severity: Severity, tool: String, field: String, span: Span, excerpt: String,
                message: String, scanner: String = "builtin") {
        self.ruleID = ruleID
        self.severity = severity
        self.tool = tool
        self.field = field
        self.span = span
        self.excerpt = excerpt
        self.message = message
        self.scanner = scanner
    }

    enum CodingKeys: String, CodingKey {
        case ruleID = "rule_id", severity, tool, field, span, excerpt, message, scanner
    }
}

/// A scanner that did not run, and why.
public struct SkippedScanner: Sendable, Codable, Equatable {
    public var name: String
    public var reason: String
    public init(name: String, reason: String) { self.name = name; self.reason = reason }
}

/// The result of scanning one server's tools.
public struct ScanReport: Sendable, Codable, Equatable {
    /// `clean`: every scanner ran and found nothing. `findings`: every scanner ran and at least one
    /// found something. `degraded`: at least one configured scanner did not run, so the absence of
    /// findings is not an all-clear (the findings of the scanners that ran are still listed).
    public enum Status: String, Sendable, Codable, Equatable {
        case clean, findings, degraded
    }

    public var server: String
    public var status: Status
    public var findings: [Finding]
    public var skippedScanners: [SkippedScanner]
    /// Scanners that ran (`builtin` plus plugins).
    public var scanners: [String]
    /// When the scan ran (seconds since 1970).
    public var scannedAt: Double

    public init(server: String, findings: [Finding], skippedScanners: [SkippedScanner] = [],
                scanners: [String] = ["builtin"], scannedAt: Double = Date().timeIntervalSince1970) {
        self.server = server
        self.findings = findings
        self.skippedScanners = skippedScanners
        self.scanners = scanners
        self.scannedAt = scannedAt
        self.status = ScanReport.status(findings: findings, skipped: skippedScanners)
    }

    static func status(findings: [Finding], skipped: [SkippedScanner]) -> Status {
        if !skipped.isEmpty { return .degraded }
        return findings.isEmpty ? .clean : .findings
    }

    /// Findings that block approval.
    public var hardFindings: [Finding] { findings.filter { $0.severity == .hard } }

    /// Findings for one tool.
    public func findings(forTool tool: String) -> [Finding] { findings.filter { $0.tool == tool } }

    /// Adds findings and skipped scanners from another scanner, recomputing the status.
    public mutating func merge(findings more: [Finding], skipped: [SkippedScanner], ranScanner: String?) {
        findings += more
        skippedScanners += skipped
        if let ranScanner { scanners.append(ranScanner) }
        status = ScanReport.status(findings: findings, skipped: skippedScanners)
    }

    enum CodingKeys: String, CodingKey {
        case server, status, findings, skippedScanners = "skipped_scanners", scanners, scannedAt = "scanned_at"
    }
}

extension ScanReport {
    /// The report as text for a terminal (`mcpproxy scan NAME`): status, scanners, skipped
    /// scanners with their reasons, then findings grouped by tool, hard first.
    public func renderText() -> String {
        var lines = ["server \(server): scan \(status.rawValue) (\(hardFindings.count) hard, \(findings.count - hardFindings.count) soft; scanners: \(scanners.joined(separator: ", ")))"]
        for s in skippedScanners { lines.append("  skipped \(s.name): \(s.reason)") }
        let tools = findings.map(\.tool).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        for tool in tools {
            lines.append("  tool \(tool):")
            let mine = findings(forTool: tool).sorted { ($0.severity == .hard ? 0 : 1) < ($1.severity == .hard ? 0 : 1) }
            for f in mine {
                lines.append("    \(f.severity.rawValue.uppercased()) \(f.ruleID) in \(f.field) [\(f.span.start)..<\(f.span.end)]: \(f.excerpt)")
                lines.append("      \(f.message)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

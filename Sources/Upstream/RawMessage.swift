import Foundation
import ProxyCore

/// One JSON-RPC message as received: its exact bytes and where its parts are.
public struct RawMessage: Sendable {
    public let bytes: [UInt8]
    public let envelope: JSONRPCEnvelope

    public init(bytes: [UInt8], envelope: JSONRPCEnvelope) {
        self.bytes = bytes
        self.envelope = envelope
    }

    /// Parses `bytes`; nil when they are not a JSON-RPC message.
    public init?(bytes: [UInt8]) {
        guard let env = try? JSONRPCEnvelope.parse(bytes) else { return nil }
        self.bytes = bytes
        self.envelope = env
    }

    /// The exact bytes of `result`, if this is a success response.
    public var resultBytes: ArraySlice<UInt8>? { envelope.result.map { bytes[$0] } }
    /// The exact bytes of `error`, if this is an error response.
    public var errorBytes: ArraySlice<UInt8>? { envelope.error.map { bytes[$0] } }
    public var paramsBytes: ArraySlice<UInt8>? { envelope.params.map { bytes[$0] } }

    /// The result parsed (for the proxy's own use, never to forward).
    public func resultValue() -> JSONValue? {
        guard let r = resultBytes else { return nil }
        return try? JSONValue.parse(Data(r))
    }

    /// A readable summary of an error response.
    public func errorSummary() -> String? {
        guard let e = errorBytes, let v = try? JSONValue.parse(Data(e)) else { return nil }
        let code = v["code"]?.intValue.map(String.init) ?? "?"
        return "\(v["message"]?.stringValue ?? "error") (code \(code))"
    }
}

/// Incremental Server-Sent Events parser (WHATWG rules: `data:` lines joined by newlines,
/// `event:` name, blank line dispatches, `:` comments, CR/LF/CRLF line ends).
public struct SSEParser {
    public struct Event: Sendable, Equatable {
        public var event: String
        public var data: String
        public var id: String?
    }
    private var buffer: [UInt8] = []
    private var dataLines: [String] = []
    private var eventName = ""
    private var lastID: String?
    private var sawCR = false

    public init() {}

    /// Feeds bytes; returns the events completed by them.
    public mutating func feed<C: Collection>(_ bytes: C) -> [Event] where C.Element == UInt8 {
        var events: [Event] = []
        for c in bytes {
            if sawCR { sawCR = false; if c == 0x0A { continue } }
            if c == 0x0D || c == 0x0A {
                sawCR = c == 0x0D
                if let e = line(String(decoding: buffer, as: UTF8.self)) { events.append(e) }
                buffer.removeAll(keepingCapacity: true)
            } else {
                buffer.append(c)
            }
        }
        return events
    }

    private mutating func line(_ l: String) -> Event? {
        if l.isEmpty {
            defer { dataLines = []; eventName = "" }
            guard !dataLines.isEmpty else { return nil }
            return Event(event: eventName.isEmpty ? "message" : eventName, data: dataLines.joined(separator: "\n"), id: lastID)
        }
        if l.hasPrefix(":") { return nil }
        var field = l, value = ""
        if let colon = l.firstIndex(of: ":") {
            field = String(l[..<colon])
            value = String(l[l.index(after: colon)...])
            if value.hasPrefix(" ") { value.removeFirst() }
        }
        switch field {
        case "data": dataLines.append(value)
        case "event": eventName = value
        case "id": lastID = value
        default: break
        }
        return nil
    }
}

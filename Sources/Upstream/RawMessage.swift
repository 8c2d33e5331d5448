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

    /// `params.progressToken` of a `notifications/progress`, as its JSON text (`"abc"` with the
    /// quotes, or `12`): tokens may be strings or numbers, and `"1"` is not `1`.
    public var progressToken: String? {
        guard let pr = envelope.params else { return nil }
        return bytes.withUnsafeBufferPointer { p in
            guard let m = JSONSpan.members(p, pr), let r = m.first(where: { $0.key == "progressToken" })?.value else { return nil }
            return String(decoding: p[r], as: UTF8.self)
        }
    }

    /// The result parsed (for the proxy's own use, never to forward).
    public func resultValue() -> JSONValue? {
        guard let r = resultBytes else { return nil }
        return try? JSONValue.parse(Data(r))
    }

    /// The error of an error response, parsed (code, message) with its exact bytes kept for
    /// forwarding; nil for other messages.
    public var rpcError: JSONRPCErrorObject? {
        errorBytes.map { JSONRPCErrorObject(raw: Array($0)) }
    }
}

/// Incremental Server-Sent Events parser (WHATWG rules: `data:` lines joined by newlines,
/// `event:` name, blank line dispatches, `:` comments, CR/LF/CRLF line ends).
///
/// Works on bytes and finds line ends with `memchr`: a 10 MB result is one `data:` line, and a
/// per-character loop (or a `String` per line) made large results cost seconds per megabyte.
public struct SSEParser {
    public struct Event: Sendable, Equatable {
        public var event: String
        /// The data lines joined by "\n", as bytes (what is forwarded).
        public var dataBytes: [UInt8]
        public var id: String?
        public var data: String { String(decoding: dataBytes, as: UTF8.self) }
        public init(event: String, data: String, id: String?) {
            self.init(event: event, dataBytes: Array(data.utf8), id: id)
        }
        public init(event: String, dataBytes: [UInt8], id: String?) {
            self.event = event
            self.dataBytes = dataBytes
            self.id = id
        }
    }
    /// The unfinished line carried over from the previous chunk.
    private var partial: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var eventName = ""
    private var lastID: String?
    private var sawCR = false
    /// The largest event (or line) kept; a longer one is dropped whole, never buffered without
    /// bound (an upstream that never sends a newline would otherwise grow the proxy's memory).
    private let maxBytes: Int
    private var discardingLine = false
    private var discardingEvent = false

    public init(maxBytes: Int = 256 << 20) { self.maxBytes = maxBytes }

    /// Feeds bytes; returns the events completed by them.
    public mutating func feed<C: Collection>(_ bytes: C) -> [Event] where C.Element == UInt8 {
        var events: [Event] = []
        let done: Void? = bytes.withContiguousStorageIfAvailable { feed($0, into: &events) }
        if done == nil { Array(bytes).withUnsafeBufferPointer { feed($0, into: &events) } }
        return events
    }

    private mutating func feed(_ p: UnsafeBufferPointer<UInt8>, into events: inout [Event]) {
        guard let base = p.baseAddress, !p.isEmpty else { return }
        var i = 0
        if sawCR {
            sawCR = false
            if p[0] == 0x0A { i = 1 }
        }
        while i < p.count {
            let rest = p.count - i
            let lf = memchr(base + i, 0x0A, rest).map { UnsafeRawPointer($0) - UnsafeRawPointer(base) }
            let crLimit = (lf ?? p.count) - i
            let cr = crLimit > 0 ? memchr(base + i, 0x0D, crLimit).map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } : nil
            guard let end = cr ?? lf else {
                if !discardingLine { partial.append(contentsOf: UnsafeBufferPointer(rebasing: p[i...])) }
                if partial.count > maxBytes { partial.removeAll(keepingCapacity: false); discardingLine = true }
                return
            }
            if discardingLine {
                discardingLine = false
                discardingEvent = true  // the event lost a line: drop it whole
            } else if partial.isEmpty {
                line(UnsafeBufferPointer(rebasing: p[i..<end]), into: &events)
            } else {
                partial.append(contentsOf: UnsafeBufferPointer(rebasing: p[i..<end]))
                let whole = partial
                partial.removeAll(keepingCapacity: false)
                whole.withUnsafeBufferPointer { line($0, into: &events) }
            }
            i = end + 1
            if p[end] == 0x0D {
                if i < p.count { if p[i] == 0x0A { i += 1 } } else { sawCR = true }
            }
        }
    }

    private mutating func line(_ l: UnsafeBufferPointer<UInt8>, into events: inout [Event]) {
        if l.isEmpty {
            defer { data = []; hasData = false; eventName = ""; discardingEvent = false }
            if hasData && !discardingEvent { events.append(Event(event: eventName.isEmpty ? "message" : eventName, dataBytes: data, id: lastID)) }
            return
        }
        if l[0] == UInt8(ascii: ":") { return }
        var field = l[...], value = l[l.count...]
        if let colon = l.firstIndex(of: UInt8(ascii: ":")) {
            field = l[..<colon]
            value = l[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        }
        if field.elementsEqual("data".utf8) {
            if hasData { data.append(0x0A) }
            data.append(contentsOf: value)
            hasData = true
            if data.count > maxBytes { data = []; discardingEvent = true }
        } else if field.elementsEqual("event".utf8) {
            eventName = String(decoding: value, as: UTF8.self)
        } else if field.elementsEqual("id".utf8) {
            lastID = String(decoding: value, as: UTF8.self)
        }
    }
}

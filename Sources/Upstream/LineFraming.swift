#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// The one framer for newline-delimited JSON-RPC (stdio on both sides: upstream pipes and the
/// stdio front end). Splits on 0x0A only: JSON encoders emit U+2028/U+2029 raw, and those are not
/// line ends here (see STACK-NOTES). A trailing CR is dropped (servers that write CRLF).
///
/// Bounded: a line longer than `maxLength` is reported once as `.tooLong` and its bytes are
/// discarded up to its newline, never buffered without bound. Linear: `memchr` from where the
/// last scan stopped, so a 10 MB line arriving in 64 KB chunks is scanned once, not once per chunk.
public struct LineFramer: Sendable {
    public enum Frame: Sendable, Equatable {
        case line(ByteBuffer)
        /// A line passed `maxLength`; what follows it up to the next newline is dropped.
        case tooLong
    }

    public let maxLength: Int
    private var buffer: ByteBuffer
    private var scanned = 0
    private var discarding = false

    public init(maxLength: Int) {
        self.maxLength = maxLength
        self.buffer = ByteBufferAllocator().buffer(capacity: 0)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.writeBytes(bytes)
    }

    /// The next complete frame, or nil when more input is needed.
    public mutating func next() -> Frame? {
        Self.next(in: &buffer, scanned: &scanned, discarding: &discarding, maxLength: maxLength)
    }

    /// What is left at end of input (a last line without its newline), if anything.
    public mutating func finish() -> ByteBuffer? {
        defer { buffer.clear(); scanned = 0 }
        guard !discarding, buffer.readableBytes > 0 else { return nil }
        return Self.trimmingCR(buffer.readSlice(length: buffer.readableBytes)!)
    }

    /// The framing step on a caller-owned buffer, shared with `LineFrameDecoder` (whose buffer
    /// NIO owns).
    static func next(in buffer: inout ByteBuffer, scanned: inout Int, discarding: inout Bool, maxLength: Int) -> Frame? {
        while true {
            let from = scanned
            let found: Int? = buffer.withUnsafeReadableBytes { p in
                guard let base = p.baseAddress, p.count > from, let hit = memchr(base + from, 0x0A, p.count - from) else { return nil }
                return UnsafeRawPointer(hit) - base
            }
            guard let length = found else {
                scanned = buffer.readableBytes
                if scanned > maxLength {
                    buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                    buffer.discardReadBytes()
                    scanned = 0
                    if !discarding { discarding = true; return .tooLong }
                }
                return nil
            }
            let line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            scanned = 0
            if discarding { discarding = false; continue }  // the tail of an over-long line
            if length > maxLength { return .tooLong }
            return .line(trimmingCR(line))
        }
    }

    static func trimmingCR(_ line: ByteBuffer) -> ByteBuffer {
        guard line.readableBytes > 0, line.getInteger(at: line.readerIndex + line.readableBytes - 1, as: UInt8.self) == 0x0D else { return line }
        return line.getSlice(at: line.readerIndex, length: line.readableBytes - 1)!
    }
}

/// `LineFramer` as a NIO decoder for upstream stdio pipes. An over-long line is an error: the
/// upstream is closed (a server that writes unbounded lines is not followed).
public final class LineFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer
    let maxLength: Int
    private var scanned = 0
    private var discarding = false

    public init(maxLength: Int) { self.maxLength = maxLength }

    public func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch LineFramer.next(in: &buffer, scanned: &scanned, discarding: &discarding, maxLength: maxLength) {
        case .line(let line):
            context.fireChannelRead(wrapInboundOut(line))
            return .continue
        case .tooLong:
            throw LineTooLong(limit: maxLength)
        case nil:
            return .needMoreData
        }
    }

    public func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0, !discarding {
            let rest = buffer.readSlice(length: buffer.readableBytes)!
            context.fireChannelRead(wrapInboundOut(LineFramer.trimmingCR(rest)))
        }
        return .needMoreData
    }
}

struct LineTooLong: Error, CustomStringConvertible {
    let limit: Int
    var description: String { "a message exceeded \(limit) bytes" }
}

/// Delivers each line to a closure and reports the end of the stream.
public final class LineSink: ChannelInboundHandler, @unchecked Sendable {  // @unchecked: a channel handler; NIO calls it on its channel's event loop only
    public typealias InboundIn = ByteBuffer
    let onLine: @Sendable (ByteBuffer) -> Void
    let onClose: @Sendable (Error?) -> Void
    private var closed = false
    private var error: Error?

    public init(onLine: @escaping @Sendable (ByteBuffer) -> Void, onClose: @escaping @Sendable (Error?) -> Void) {
        self.onLine = onLine
        self.onClose = onClose
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        onLine(unwrapInboundIn(data))
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.error = error
        context.close(promise: nil)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelEvent, case .inputClosed = event as! ChannelEvent { finish() }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    private func finish() {
        guard !closed else { return }
        closed = true
        onClose(error)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Splits a byte stream on 0x0A (newline-delimited JSON-RPC over stdio). Only 0x0A: JSON
/// encoders emit U+2028/U+2029 raw, and those are not line ends here (see STACK-NOTES).
public final class LineFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer
    let maxLength: Int
    private var scanned = 0

    public init(maxLength: Int) { self.maxLength = maxLength }

    public func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        // memchr, not a generic element loop: a 10 MB line is scanned once per chunk, and the
        // generic loop cost most of the proxy's CPU for large stdio results.
        let from = scanned
        let found: Int? = buffer.withUnsafeReadableBytes { p in
            guard let base = p.baseAddress, p.count > from, let hit = memchr(base + from, 0x0A, p.count - from) else { return nil }
            return UnsafeRawPointer(hit) - base
        }
        if let length = found {
            var line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            scanned = 0
            // Tolerate CRLF from servers that write it.
            if line.readableBytes > 0, line.getInteger(at: line.readerIndex + line.readableBytes - 1, as: UInt8.self) == 0x0D {
                line = line.getSlice(at: line.readerIndex, length: line.readableBytes - 1)!
            }
            context.fireChannelRead(wrapInboundOut(line))
            return .continue
        }
        scanned = buffer.readableBytes
        if scanned > maxLength { throw LineTooLong(limit: maxLength) }
        return .needMoreData
    }

    public func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            let rest = buffer.readSlice(length: buffer.readableBytes)!
            context.fireChannelRead(wrapInboundOut(rest))
        }
        return .needMoreData
    }
}

struct LineTooLong: Error, CustomStringConvertible {
    let limit: Int
    var description: String { "a message exceeded \(limit) bytes" }
}

/// Delivers each line to a closure and reports the end of the stream.
public final class LineSink: ChannelInboundHandler, @unchecked Sendable {
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

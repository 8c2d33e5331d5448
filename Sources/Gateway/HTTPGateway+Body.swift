import Hummingbird
import NIOCore

extension HTTPGateway {
    /// Bytes past the body limit the gateway still reads (and discards) so that a client that is
    /// still sending can finish and read the 413, instead of blocking on a full socket buffer
    /// until its own timeout. Beyond this the connection is closed.
    static let drainAllowance = 64 << 20

    /// The request body when it fits in `limit`; nil when it is larger. A larger body is read
    /// to its end and discarded (up to `limit + drainAllowance` bytes) before the caller answers 413.
    static func collectBody(_ body: RequestBody, limit: Int) async -> ByteBuffer? {
        var buffer = ByteBuffer()
        var total = 0
        var tooLarge = false
        do {
            for try await chunk in body {
                total += chunk.readableBytes
                if tooLarge {
                    if total > limit + drainAllowance { return nil }
                    continue
                }
                if total > limit {
                    tooLarge = true
                    buffer = ByteBuffer()
                    continue
                }
                var c = chunk
                buffer.writeBuffer(&c)
            }
        } catch {
            return nil
        }
        return tooLarge ? nil : buffer
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One JSON-RPC message as exactly one line, for every wire that frames by lines: an upstream's
/// stdin, the stdio front end's stdout, a server-sent event's `data:` line.
///
/// The gateway forwards bytes it did not write (a client's arguments and answers, an upstream's
/// results), and JSON allows CR and LF as whitespace between tokens. Written as they came, a
/// client's `{"x":\n{"jsonrpc":"2.0","method":"tools/call",...}\n}` became a second message
/// to a stdio upstream, one the client's scope did not allow; an upstream's result could do the
/// same to a client's event stream. In valid JSON a raw CR or LF can only be whitespace (inside a
/// string it must be escaped), so each one becomes a space: the value is unchanged and the line
/// cannot be split.
public enum JSONLine {
    /// `message` with every raw CR and LF turned into a space (the same bytes when there is none).
    public static func flatten(_ message: [UInt8]) -> [UInt8] {
        let found = message.withUnsafeBufferPointer { p -> Bool in
            guard let base = p.baseAddress, p.count > 0 else { return false }
            return memchr(base, 0x0A, p.count) != nil || memchr(base, 0x0D, p.count) != nil
        }
        guard found else { return message }
        var out = message
        for i in out.indices where out[i] == 0x0A || out[i] == 0x0D { out[i] = 0x20 }
        return out
    }
}

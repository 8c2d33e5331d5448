import Foundation

/// A `HOST:PORT` listen address (`listen`, `--listen`). The one parser of it: the config loader,
/// the serve command and the runtime all use this.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// The host without IPv6 brackets (`127.0.0.1`, `::1`, `0.0.0.0`, a name).
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`, `[V6]:PORT` or `:PORT` (loopback); nil when malformed or the port is
    /// outside 0...65535.
    public static func parse(_ s: String) -> ListenAddress? {
        guard let colon = s.lastIndex(of: ":") else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        else if host.contains(":") { return nil }  // a bare IPv6 address needs brackets
        guard let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        if host.contains(where: { $0.isWhitespace || $0 == "/" }) { return nil }
        return ListenAddress(host: host.isEmpty ? "127.0.0.1" : host, port: port)
    }

    /// True when only this machine can connect.
    public var isLoopback: Bool { LoopbackHost.contains(host) }
    /// True for 0.0.0.0 / ::, which listen on every interface.
    public var isWildcard: Bool { LoopbackHost.isWildcard(host) }

    /// `host:port` with IPv6 hosts bracketed, as in a URL.
    public var description: String { "\(urlHost):\(port)" }
    /// The host as written in a URL authority.
    public var urlHost: String { host.contains(":") ? "[\(host)]" : host }
}

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IP address, v4 or v6, as bytes (pure; no resolver).
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    case v4(UInt32)
    /// 16 bytes, network order.
    case v6([UInt8])

    /// Parses a literal (`10.1.2.3`, `::1`, `fe80::1`); nil for anything else (no zone ids, no
    /// shortened IPv4 forms such as `10.1` or `0x7f.1`: only the dotted-quad spelling).
    public init?(_ text: String) {
        if text.contains(":") {
            guard !text.contains("%") else { return nil }
            var a = in6_addr()
            guard inet_pton(AF_INET6, text, &a) == 1 else { return nil }
            self = .v6(withUnsafeBytes(of: &a) { Array($0) })
            return
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for p in parts {
            // Decimal only, no leading zeros (inet_aton reads `010` as octal; we refuse it).
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }),
                  p == "0" || p.first != "0", let n = UInt32(p), n <= 255 else { return nil }
            value = value << 8 | n
        }
        self = .v4(value)
    }

    /// The IPv4 address an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible v6 address carries.
    public var embeddedV4: UInt32? {
        guard case .v6(let b) = self, b.count == 16 else { return nil }
        let mapped = b[0..<10].allSatisfy { $0 == 0 } && b[10] == 0xff && b[11] == 0xff
        guard mapped else { return nil }
        return UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15])
    }

    public var description: String {
        switch self {
        case .v4(let v):
            return "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
        case .v6(var b):
            var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            _ = b.withUnsafeMutableBytes { raw in inet_ntop(AF_INET6, raw.baseAddress, &out, socklen_t(out.count)) }
            return String(cString: out)
        }
    }
}

/// What kind of address a destination is, for the egress rule (docs/egress.md).
public enum AddressClass: String, Sendable, CaseIterable {
    /// Reachable on the internet (everything not listed below).
    case global
    /// 127.0.0.0/8, ::1.
    case loopback
    /// 169.254.0.0/16, fe80::/10.
    case linkLocal = "link_local"
    /// 0.0.0.0/8, ::.
    case unspecified
    /// 224.0.0.0/4, 255.255.255.255, 240.0.0.0/4, ff00::/8.
    case multicastOrReserved = "multicast_or_reserved"
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT), 198.18/15 (benchmarking),
    /// fc00::/7 (unique local), fec0::/10 (old site-local).
    case privateRange = "private"

    /// Classifies `ip` (an IPv4-mapped v6 address as its IPv4 address).
    public static func of(_ ip: IPAddress) -> AddressClass {
        if let v4 = ip.embeddedV4 { return of(.v4(v4)) }
        switch ip {
        case .v4(let a):
            func inNet(_ net: UInt32, _ bits: UInt32) -> Bool { bits == 0 ? true : (a >> (32 - bits)) == (net >> (32 - bits)) }
            if inNet(0x7f00_0000, 8) { return .loopback }
            if inNet(0x0000_0000, 8) { return .unspecified }
            if inNet(0xa9fe_0000, 16) { return .linkLocal }
            if inNet(0xe000_0000, 4) || inNet(0xf000_0000, 4) { return .multicastOrReserved }
            if inNet(0x0a00_0000, 8) || inNet(0xac10_0000, 12) || inNet(0xc0a8_0000, 16)
                || inNet(0x6440_0000, 10) || inNet(0xc612_0000, 15) { return .privateRange }
            return .global
        case .v6(let b):
            if b[0..<15].allSatisfy({ $0 == 0 }) { return b[15] == 1 ? .loopback : (b[15] == 0 ? .unspecified : .multicastOrReserved) }
            if b[0] == 0xfe && (b[1] & 0xc0) == 0x80 { return .linkLocal }
            if b[0] == 0xfe && (b[1] & 0xc0) == 0xc0 { return .privateRange }
            if (b[0] & 0xfe) == 0xfc { return .privateRange }
            if b[0] == 0xff { return .multicastOrReserved }
            return .global
        }
    }
}

/// One `egress` entry: a host (a DNS name or an IP literal) and a port.
public struct EgressRule: Sendable, Hashable, CustomStringConvertible {
    public enum Host: Sendable, Hashable {
        /// A DNS name, lower-cased, without a trailing dot.
        case name(String)
        /// An IP literal: only this exact address, which may then be private.
        case ip(IPAddress)
    }
    public var host: Host
    public var port: Int

    public init(host: Host, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `a.b.c.d:port` or `[v6]:port`. Strict: a port is required (1-65535,
    /// decimal), no scheme, path, user, wildcard or zone id; a name is 1-253 characters of
    /// labels of letters, digits and inner hyphens (1-63 each). Throws `.invalidConfig` saying
    /// what is wrong.
    public static func parse(_ text: String) throws -> EgressRule {
        func bad(_ why: String) -> ProxyError {
            ProxyError(.invalidConfig, "egress entry \"\(text)\": \(why); write host:port, for example \"api.example.com:443\", \"10.1.2.3:8080\" or \"[2001:db8::1]:443\"")
        }
        if text.contains("://") { throw bad("no scheme is allowed") }
        if text.contains("/") { throw bad("no path is allowed") }
        if text.contains("@") { throw bad("no user is allowed") }
        if text.contains("*") { throw bad("wildcards are not supported; list each host") }
        if text.contains(where: { $0.isWhitespace }) { throw bad("no spaces are allowed") }
        let hostPart: Substring, portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw bad("an IPv6 address needs a closing \"]\"") }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw bad("a port is required after \"]\"") }
            portPart = rest.dropFirst()
        } else {
            let colons = text.filter { $0 == ":" }.count
            if colons == 0 { throw bad("a port is required") }
            if colons > 1 { throw bad("an IPv6 address must be written in brackets") }
            let i = text.firstIndex(of: ":")!
            hostPart = text[..<i]
            portPart = text[text.index(after: i)...]
        }
        guard !portPart.isEmpty, portPart.count <= 5, portPart.allSatisfy({ $0.isASCII && $0.isNumber }),
              let port = Int(portPart), (1...65535).contains(port), portPart.first != "0" else {
            throw bad("the port must be a number from 1 to 65535")
        }
        if hostPart.isEmpty { throw bad("the host is empty") }
        if text.hasPrefix("[") {
            guard let ip = IPAddress(String(hostPart)), case .v6 = ip else { throw bad("\"\(hostPart)\" is not an IPv6 address") }
            return EgressRule(host: .ip(ip), port: port)
        }
        if let ip = IPAddress(String(hostPart)) { return EgressRule(host: .ip(ip), port: port) }
        var name = hostPart.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        // A numeric last label is an address in a form we refuse (`10.1`, `1.2.3.999`, `010.0.0.1`).
        if let last = labels.last, !last.isEmpty, last.allSatisfy({ $0.isASCII && $0.isNumber }) {
            throw bad("\"\(hostPart)\" is neither a dotted-quad IPv4 address nor a host name")
        }
        guard !name.isEmpty, name.utf8.count <= 253 else { throw bad("the host name must be 1 to 253 characters") }
        for label in labels {
            guard !label.isEmpty, label.utf8.count <= 63,
                  label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }),
                  label.first != "-", label.last != "-" else {
                throw bad("\"\(hostPart)\" is not a valid host name (labels of letters, digits and inner hyphens)")
            }
        }
        return EgressRule(host: .name(name), port: port)
    }

    public var description: String {
        switch host {
        case .name(let n): return "\(n):\(port)"
        case .ip(.v4(let v)): return "\(IPAddress.v4(v)):\(port)"
        case .ip(let ip): return "[\(ip)]:\(port)"
        }
    }
}

/// A server's egress allowlist and the exact rule of docs/egress.md:
///
/// 1. The requested host and port must match an entry (names case-insensitively, an IP literal
///    by address, with an IPv4-mapped v6 literal equal to its IPv4 address).
/// 2. The proxy resolves a name itself; every address it resolves to is checked, and all must
///    pass: an address of the gateway host itself (any address on its interfaces), loopback,
///    link-local, unspecified, multicast or reserved is always refused; a private one (RFC 1918,
///    CGNAT, benchmarking, unique-local) only when the request named it as an IP literal that is
///    an entry; a global one passes.
/// 3. The connection goes to the checked address (no second lookup).
public struct EgressPolicy: Sendable, Equatable {
    public var rules: [EgressRule]

    public init(_ rules: [EgressRule]) { self.rules = rules }

    /// Why a destination is refused.
    public enum Denial: String, Sendable, CaseIterable {
        /// The host is not in the list.
        case hostNotAllowed = "host_not_allowed"
        /// The host is listed, but not with this port.
        case portNotAllowed = "port_not_allowed"
        /// The name did not resolve.
        case unresolvable
        /// The name resolved to (or the literal is) an address the rule refuses.
        case forbiddenAddress = "forbidden_address"
        /// The request was not an HTTP proxy request this proxy serves.
        case badRequest = "bad_request"
    }

    /// Normalizes a requested host: lower-cased, trailing dot removed, brackets removed.
    public static func normalize(_ host: String) -> String {
        var h = host.lowercased()
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h.hasSuffix(".") { h.removeLast() }
        return h
    }

    /// Step 1: whether `host`:`port` is listed; nil when it is, else why not.
    public func check(host: String, port: Int) -> Denial? {
        let h = Self.normalize(host)
        let ip = IPAddress(h).map { $0.embeddedV4.map(IPAddress.v4) ?? $0 }
        var hostListed = false
        for r in rules {
            let match: Bool
            switch r.host {
            case .name(let n): match = ip == nil && n == h
            case .ip(let a): match = ip != nil && (a.embeddedV4.map(IPAddress.v4) ?? a) == ip
            }
            if match {
                hostListed = true
                if r.port == port { return nil }
            }
        }
        return hostListed ? .portNotAllowed : .hostNotAllowed
    }

    /// Step 2 for one resolved address: nil when it may be reached. `requestedLiteral` is true
    /// when the request named this address as an IP literal (then a listed private address
    /// passes); `ownAddresses` are the gateway host's addresses.
    public static func checkResolved(_ address: IPAddress, requestedLiteral: Bool, ownAddresses: Set<IPAddress>) -> Denial? {
        let plain = address.embeddedV4.map(IPAddress.v4) ?? address
        if ownAddresses.contains(plain) || ownAddresses.contains(address) { return .forbiddenAddress }
        switch AddressClass.of(plain) {
        case .global: return nil
        case .privateRange: return requestedLiteral ? nil : .forbiddenAddress
        case .loopback, .linkLocal, .unspecified, .multicastOrReserved: return .forbiddenAddress
        }
    }
}

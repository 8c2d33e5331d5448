import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProxyCore
#if canImport(Glibc)
import Glibc
#endif

/// A refused egress attempt (docs/egress.md): what a confined server asked for and why it was
/// refused. Delivered to `EgressProxy.denials()` subscribers (the runtime monitor) and to the
/// `onDenied` callback (the metric), and logged.
public struct EgressDenial: Sendable, Equatable {
    /// The server whose listener received the request.
    public var server: String
    /// The host as requested (a name or an IP literal); "" when the request could not be read.
    public var host: String
    public var port: Int
    /// The resolved address that was refused, for `forbidden_address`.
    public var address: String?
    public var reason: EgressPolicy.Denial
    /// The message sent back to the server (and logged).
    public var message: String
    public var time: Date
}

/// The gateway's forwarding proxy for servers with an `egress` allowlist: HTTP `CONNECT`
/// (tunnels, so TLS stays end to end) and plain HTTP with an absolute URI.
///
/// One listener per server launch, bound to the gateway's address on that launch's own network
/// (the container's internal network). The listener therefore identifies the server by where
/// the connection arrived, not by a source address that would have to be learnt from the
/// engine (and could be spoofed from another network): each listener only ever applies its
/// own server's allowlist, and a server's network reaches no other server's listener.
///
/// Per request: the host and port must be in the allowlist; a name is resolved here (the
/// server's own DNS is never trusted), every resolved address is checked by
/// `EgressPolicy.checkResolved` against the host's own addresses, and the connection goes to
/// the checked address. A plain HTTP request is sent with `Connection: close` (one request per
/// connection), its `Proxy-*` headers removed.
public final class EgressProxy: Sendable {
    /// Longest request head (request line and headers) read before a request is refused.
    public static let maxHeadBytes = 16 * 1024
    /// Connections served at once per listener; further ones are closed.
    public static let maxConnections = 256
    /// Seconds a client has to send its request head.
    public static let headTimeoutSeconds: UInt64 = 30

    private let group: EventLoopGroup
    private let logger: Logger
    private let onDenied: @Sendable (EgressDenial) -> Void
    private let state = NIOLockedValueBox(State())

    private struct Listener {
        var channel: Channel
        var task: Task<Void, Never>
        var server: String
    }
    private struct State {
        var listeners: [String: Listener] = [:]
        var subscribers: [UUID: AsyncStream<EgressDenial>.Continuation] = [:]
        var denied = 0
        var allowed = 0
    }

    /// `onDenied` runs for every refused attempt (on a NIO thread; keep it short).
    public init(group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
                onDenied: @escaping @Sendable (EgressDenial) -> Void = { _ in }) {
        self.group = group
        self.logger = logger
        self.onDenied = onDenied
    }

    /// A stream of every refused attempt from now on, for the runtime monitor. Bounded: the
    /// newest 1024 are kept when the consumer falls behind. Ends when the consumer stops
    /// iterating.
    public func denials() -> AsyncStream<EgressDenial> {
        let (stream, continuation) = AsyncStream<EgressDenial>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        let id = UUID()
        state.withLockedValue { $0.subscribers[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLockedValue { _ = $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Counts since start: (allowed connections, denied attempts).
    public var counts: (allowed: Int, denied: Int) { state.withLockedValue { ($0.allowed, $0.denied) } }

    /// Opens the listener of one launch (`key`: unique per launch) on `host` (port chosen by the
    /// kernel); returns the port.
    public func open(key: String, server: String, policy: EgressPolicy, host: String) async throws -> Int {
        await close(key: key)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // podman brings its bridge (and the gateway address) up only when the container
            // starts: bind before the address exists.
            .serverChannelOption(ChannelOptions.Types.SocketOption(level: .ip, name: NIOBSDSocket.Option(rawValue: 15 /* IP_FREEBIND */)), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
        let server_ = try await bootstrap.bind(host: host, port: 0) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        let channel = server_.channel
        guard let port = channel.localAddress?.port else {
            try? await channel.close()
            throw ProxyError(.internalError, "egress proxy for \"\(server)\": no local port after bind")
        }
        let task = Task { [weak self] in
            let active = ManagedAtomicCounter()
            try? await server_.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { tasks in
                    for try await connection in inbound {
                        guard let self else { return }
                        if active.increment() > Self.maxConnections {
                            active.decrement()
                            connection.channel.close(promise: nil)
                            continue
                        }
                        tasks.addTask {
                            await self.serve(connection, server: server, policy: policy)
                            active.decrement()
                        }
                    }
                }
            }
        }
        state.withLockedValue { $0.listeners[key] = Listener(channel: channel, task: task, server: server) }
        logger.info("egress proxy for \"\(server)\" listens on \(host):\(port); allowed: \(policy.rules.isEmpty ? "nothing" : policy.rules.map(\.description).joined(separator: ", "))")
        return port
    }

    /// Closes the listener of `key` and every connection it accepted.
    public func close(key: String) async {
        guard let l = state.withLockedValue({ $0.listeners.removeValue(forKey: key) }) else { return }
        l.task.cancel()
        try? await l.channel.close()
        _ = await l.task.value
    }

    /// Closes every listener.
    public func closeAll() async {
        let keys = state.withLockedValue { Array($0.listeners.keys) }
        for k in keys { await close(key: k) }
    }

    // MARK: - One connection

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, server: String, policy: EgressPolicy) async {
        // A client that never finishes its request head does not hold a connection slot.
        let channel = connection.channel
        let headTimer = Task {
            try await Task.sleep(nanoseconds: Self.headTimeoutSeconds * 1_000_000_000)
            channel.close(promise: nil)
        }
        defer { headTimer.cancel() }
        try? await connection.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var buffer = ByteBuffer()
            var headEnd: Int? = nil
            while headEnd == nil {
                guard var chunk = try await iterator.next() else { return }
                buffer.writeBuffer(&chunk)
                headEnd = Self.headEnd(buffer)
                if headEnd == nil, buffer.readableBytes > Self.maxHeadBytes { break }
            }
            headTimer.cancel()
            guard let end = headEnd, let head = buffer.readString(length: end) else {
                try await self.refuse(outbound, server: server, host: "", port: 0, address: nil, reason: .badRequest,
                                      status: "431 Request Header Fields Too Large", message: "the request head is longer than \(Self.maxHeadBytes) bytes")
                return
            }
            let request: EgressRequest
            switch EgressRequest.parse(head) {
            case .success(let r): request = r
            case .failure(let why):
                try await self.refuse(outbound, server: server, host: "", port: 0, address: nil, reason: .badRequest,
                                      status: "400 Bad Request", message: why.message)
                return
            }
            if let denial = policy.check(host: request.host, port: request.port) {
                let msg = denial == .portNotAllowed
                    ? "port \(request.port) of \(request.host) is not in server \"\(server)\"'s egress allowlist"
                    : "\(request.host):\(request.port) is not in server \"\(server)\"'s egress allowlist"
                try await self.refuse(outbound, server: server, host: request.host, port: request.port, address: nil,
                                      reason: denial, status: "403 Forbidden", message: msg)
                return
            }
            let target: SocketAddress
            switch await self.resolveChecked(request.host, port: request.port) {
            case .success(let a): target = a
            case .failure(let f):
                try await self.refuse(outbound, server: server, host: request.host, port: request.port, address: f.address,
                                      reason: f.reason, status: f.reason == .unresolvable ? "502 Bad Gateway" : "403 Forbidden",
                                      message: f.message)
                return
            }
            let upstream: NIOAsyncChannel<ByteBuffer, ByteBuffer>
            do {
                upstream = try await ClientBootstrap(group: self.group)
                    .connectTimeout(.seconds(10))
                    .channelOption(.allowRemoteHalfClosure, value: false)
                    .connect(to: target) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                        }
                    }
            } catch {
                let msg = "cannot connect to \(request.host):\(request.port) (\(target.ipAddress ?? "?")): \(error)"
                self.logger.info("egress \"\(server)\": \(msg)")
                try await outbound.write(Self.response("502 Bad Gateway", msg))
                return
            }
            self.state.withLockedValue { $0.allowed += 1 }
            self.logger.debug("egress \"\(server)\": \(request.isConnect ? "CONNECT" : "HTTP") \(request.host):\(request.port) -> \(target.ipAddress ?? "?")")
            let clientChannel = connection.channel
            try? await upstream.executeThenClose { upInbound, upOutbound in
                if request.isConnect {
                    try await outbound.write(ByteBuffer(string: "HTTP/1.1 200 Connection established\r\n\r\n"))
                } else {
                    try await upOutbound.write(ByteBuffer(string: request.forwardedHead))
                }
                if buffer.readableBytes > 0 { try await upOutbound.write(buffer) }
                let upChannel = upstream.channel
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask {
                        // Upstream → server; when the destination closes, the server's
                        // connection is closed too (which ends the other direction).
                        defer { clientChannel.close(promise: nil) }
                        for try await chunk in upInbound { try await outbound.write(chunk) }
                    }
                    // Server → upstream (here: the iterator cannot leave this task).
                    do {
                        while let chunk = try await iterator.next() { try await upOutbound.write(chunk) }
                    } catch {}
                    upChannel.close(promise: nil)
                    try? await tasks.waitForAll()
                }
            }
        }
    }

    private func refuse(_ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, server: String, host: String, port: Int,
                        address: String?, reason: EgressPolicy.Denial, status: String, message: String) async throws {
        let denial = EgressDenial(server: server, host: host, port: port, address: address, reason: reason,
                                  message: message, time: Date())
        logger.warning("egress denied for \"\(server)\": \(message) (\(reason.rawValue))")
        let subscribers = state.withLockedValue { s -> [AsyncStream<EgressDenial>.Continuation] in
            s.denied += 1
            return Array(s.subscribers.values)
        }
        onDenied(denial)
        for c in subscribers { c.yield(denial) }
        try await outbound.write(Self.response(status, "egress denied: \(message)", reason: reason))
    }

    static func response(_ status: String, _ message: String, reason: EgressPolicy.Denial? = nil) -> ByteBuffer {
        let body = message + "\n"
        var head = "HTTP/1.1 \(status)\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
        if let reason { head += "X-Mcpproxy-Egress-Denied: \(reason.rawValue)\r\n" }
        return ByteBuffer(string: head + "\r\n" + body)
    }

    /// Offset just past the blank line that ends the request head, if it has arrived.
    static func headEnd(_ buffer: ByteBuffer) -> Int? {
        let view = buffer.readableBytesView
        guard view.count >= 4 else { return nil }
        var i = view.startIndex
        while i + 3 < view.endIndex {
            if view[i] == 13, view[i + 1] == 10, view[i + 2] == 13, view[i + 3] == 10 { return i + 4 - view.startIndex }
            i += 1
        }
        return nil
    }

    // MARK: - Resolution

    struct ResolveFailure: Error {
        var reason: EgressPolicy.Denial
        var address: String?
        var message: String
    }

    /// Resolves `host` (unless it is a literal) and checks every address; the first address
    /// when all pass.
    private func resolveChecked(_ host: String, port: Int) async -> Result<SocketAddress, ResolveFailure> {
        let h = EgressPolicy.normalize(host)
        let literal = IPAddress(h)
        let addresses: [IPAddress]
        if let literal {
            addresses = [literal]
        } else {
            let found = (try? await NIOThreadPool.singleton.runIfActive { Self.lookup(h) }) ?? []
            guard !found.isEmpty else {
                return .failure(ResolveFailure(reason: .unresolvable, address: nil, message: "\(host) does not resolve"))
            }
            addresses = found
        }
        let own = Self.ownAddresses()
        for a in addresses {
            if EgressPolicy.checkResolved(a, requestedLiteral: literal != nil, ownAddresses: own) != nil {
                let cls = AddressClass.of(a)
                let kind = cls == .global || cls == .privateRange && literal != nil ? "an address of the gateway host" : "a \(cls.rawValue) address"
                let msg = literal != nil
                    ? "\(a) is \(kind), which egress never reaches"
                    : "\(host) resolves to \(a), \(kind), which egress never reaches by name"
                return .failure(ResolveFailure(reason: .forbiddenAddress, address: a.description, message: msg))
            }
        }
        do {
            return .success(try SocketAddress(ipAddress: addresses[0].description, port: port))
        } catch {
            return .failure(ResolveFailure(reason: .unresolvable, address: addresses[0].description, message: "\(error)"))
        }
    }

    /// getaddrinfo (the host's resolver: /etc/hosts, then DNS), TCP addresses only.
    static func lookup(_ host: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var out: [IPAddress] = []
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            if let a = Self.address(ai.pointee.ai_addr), !out.contains(a) { out.append(a) }
            p = ai.pointee.ai_next
        }
        return out
    }

    static func address(_ sa: UnsafeMutablePointer<sockaddr>?) -> IPAddress? {
        guard let sa else { return nil }
        switch Int32(sa.pointee.sa_family) {
        case AF_INET:
            return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { IPAddress.v4(UInt32(bigEndian: $0.pointee.sin_addr.s_addr)) }
        case AF_INET6:
            return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                var a = p.pointee.sin6_addr
                return IPAddress.v6(withUnsafeBytes(of: &a) { Array($0) })
            }
        default:
            return nil
        }
    }

    /// Every address on this host's interfaces (read per request: interfaces come and go).
    static func ownAddresses() -> Set<IPAddress> {
        var out: Set<IPAddress> = []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return out }
        defer { freeifaddrs(first) }
        var p: UnsafeMutablePointer<ifaddrs>? = first
        while let i = p {
            if let a = address(i.pointee.ifa_addr) { out.insert(a) }
            p = i.pointee.ifa_next
        }
        return out
    }
}

/// A small thread-safe counter.
final class ManagedAtomicCounter: Sendable {
    private let value = NIOLockedValueBox(0)
    @discardableResult func increment() -> Int { value.withLockedValue { $0 += 1; return $0 } }
    func decrement() { value.withLockedValue { $0 -= 1 } }
}

/// A proxy request head, parsed (pure).
public struct EgressRequest: Sendable, Equatable {
    public var isConnect: Bool
    public var host: String
    public var port: Int
    /// For plain HTTP: the head to send to the destination (origin-form request line,
    /// `Proxy-*` and hop-by-hop connection headers removed, `Connection: close`).
    public var forwardedHead: String

    public struct Failure: Error, Equatable {
        public var message: String
    }

    /// Parses `head` (the request line and headers, ending with the blank line).
    public static func parse(_ head: String) -> Result<EgressRequest, Failure> {
        var lines = head.components(separatedBy: "\r\n")
        while lines.last == "" { lines.removeLast() }
        guard let requestLine = lines.first else { return .failure(Failure(message: "empty request")) }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return .failure(Failure(message: "not an HTTP/1.x request line"))
        }
        let method = String(parts[0]), target = String(parts[1]), version = String(parts[2])
        if method.uppercased() == "CONNECT" {
            guard let (host, port) = splitHostPort(target), let port else {
                return .failure(Failure(message: "CONNECT needs host:port, found \"\(target)\""))
            }
            return .success(EgressRequest(isConnect: true, host: host, port: port, forwardedHead: ""))
        }
        let lower = target.lowercased()
        guard lower.hasPrefix("http://") else {
            if lower.hasPrefix("https://") {
                return .failure(Failure(message: "an https:// URL must be requested with CONNECT (set HTTPS_PROXY)"))
            }
            return .failure(Failure(message: "this is a forwarding proxy: the request needs an absolute http:// URL"))
        }
        let rest = target.dropFirst("http://".count)
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = String(rest[..<authorityEnd])
        var path = String(rest[authorityEnd...])
        if let hash = path.firstIndex(of: "#") { path = String(path[..<hash]) }
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        if authority.contains("@") { return .failure(Failure(message: "user info in the URL is not forwarded")) }
        guard let (host, port) = splitHostPort(authority), !host.isEmpty else {
            return .failure(Failure(message: "the URL has no valid host"))
        }
        var out = ["\(method) \(path) \(version)"]
        var sawHost = false
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            if name.hasPrefix("proxy-") || name == "connection" || name == "keep-alive" { continue }
            if name == "host" { sawHost = true }
            out.append(line)
        }
        if !sawHost { out.insert("Host: \(authority)", at: 1) }
        out.append("Connection: close")
        return .success(EgressRequest(isConnect: false, host: host, port: port ?? 80,
                                      forwardedHead: out.joined(separator: "\r\n") + "\r\n\r\n"))
    }

    /// `host:port`, `[v6]:port` or a bare host; nil when malformed, port nil when absent.
    static func splitHostPort(_ s: String) -> (String, Int?)? {
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return nil }
            let host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            if rest.isEmpty { return (host, nil) }
            guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (1...65535).contains(p) else { return nil }
            return (host, p)
        }
        let pieces = s.split(separator: ":", omittingEmptySubsequences: false)
        if pieces.count == 1 { return s.isEmpty ? nil : (s, nil) }
        guard pieces.count == 2, !pieces[0].isEmpty, pieces[1].allSatisfy({ $0.isASCII && $0.isNumber }),
              let p = Int(pieces[1]), (1...65535).contains(p) else { return nil }
        return (String(pieces[0]), p)
    }
}

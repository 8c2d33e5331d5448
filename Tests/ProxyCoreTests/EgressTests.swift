import Foundation
import ProxyCore
import Testing

/// The pure parts of egress (docs/egress.md): parsing entries, classifying addresses, the rule.
@Suite("Egress allowlist")
struct EgressTests {
    // MARK: parsing

    @Test(arguments: [
        ("api.example.com:443", "api.example.com:443"),
        ("API.Example.COM:443", "api.example.com:443"),
        ("api.example.com.:443", "api.example.com:443"),
        ("localhost:8080", "localhost:8080"),
        ("a-b.c-d.io:1", "a-b.c-d.io:1"),
        ("x:65535", "x:65535"),
        ("10.1.2.3:8080", "10.1.2.3:8080"),
        ("0.0.0.0:80", "0.0.0.0:80"),
        ("[2001:db8::1]:443", "[2001:db8::1]:443"),
        ("[::ffff:10.0.0.1]:443", "[::ffff:10.0.0.1]:443"),
        ("xn--bcher-kva.example:443", "xn--bcher-kva.example:443"),
        ("1abc.example:443", "1abc.example:443"),
    ])
    func validEntriesParse(text: String, shown: String) throws {
        #expect(try EgressRule.parse(text).description == shown)
    }

    @Test(arguments: [
        ("api.example.com", "a port is required"),
        ("api.example.com:", "the port must be a number from 1 to 65535"),
        ("api.example.com:0", "the port must be a number from 1 to 65535"),
        ("api.example.com:65536", "the port must be a number from 1 to 65535"),
        ("api.example.com:0443", "the port must be a number from 1 to 65535"),
        ("api.example.com:+443", "the port must be a number from 1 to 65535"),
        ("api.example.com:https", "the port must be a number from 1 to 65535"),
        ("api.example.com:99999999999999999999", "the port must be a number from 1 to 65535"),
        ("https://api.example.com:443", "no scheme is allowed"),
        ("api.example.com:443/v1", "no path is allowed"),
        ("user@api.example.com:443", "no user is allowed"),
        ("*.example.com:443", "wildcards are not supported"),
        ("api example.com:443", "no spaces are allowed"),
        (":443", "the host is empty"),
        ("2001:db8::1:443", "an IPv6 address must be written in brackets"),
        ("[2001:db8::1]", "a port is required after"),
        ("[2001:db8::1:443", "needs a closing"),
        ("[10.0.0.1]:443", "is not an IPv6 address"),
        ("[fe80::1%eth0]:443", "is not an IPv6 address"),
        ("10.1:443", "is neither a dotted-quad IPv4 address nor a host name"),
        ("010.0.0.1:443", "is neither a dotted-quad IPv4 address nor a host name"),
        ("1.2.3.256:443", "is neither a dotted-quad IPv4 address nor a host name"),
        ("0x7f.0.0.1:443", "is neither a dotted-quad IPv4 address nor a host name"),
        ("-bad.example.com:443", "not a valid host name"),
        ("bad-.example.com:443", "not a valid host name"),
        ("a..b:443", "not a valid host name"),
        ("under_score.example:443", "not a valid host name"),
        ("bü.example:443", "not a valid host name"),
        (String(repeating: "a", count: 64) + ".example:443", "not a valid host name"),
        (String(repeating: "abcdefghi.", count: 26) + "com:443", "1 to 253 characters"),
    ])
    func invalidEntriesSayWhy(text: String, why: String) {
        do {
            _ = try EgressRule.parse(text)
            Issue.record("\(text) parsed")
        } catch let e as ProxyError {
            #expect(e.code == .invalidConfig)
            #expect(e.message.contains(why), "got: \(e.message)")
            #expect(e.message.contains("host:port"))
        } catch {
            Issue.record("\(error)")
        }
    }

    // MARK: addresses

    @Test(arguments: [
        ("127.0.0.1", AddressClass.loopback), ("127.255.255.254", .loopback), ("::1", .loopback),
        ("::ffff:127.0.0.1", .loopback),
        ("0.0.0.0", .unspecified), ("0.1.2.3", .unspecified), ("::", .unspecified),
        ("169.254.169.254", .linkLocal), ("fe80::1", .linkLocal), ("febf::1", .linkLocal),
        ("::ffff:169.254.1.1", .linkLocal),
        ("10.0.0.1", .privateRange), ("10.255.255.255", .privateRange),
        ("172.16.0.1", .privateRange), ("172.31.255.255", .privateRange),
        ("192.168.1.1", .privateRange), ("100.64.0.1", .privateRange), ("100.127.255.255", .privateRange),
        ("198.18.0.1", .privateRange), ("198.19.255.255", .privateRange),
        ("fc00::1", .privateRange), ("fd12:3456::1", .privateRange), ("fec0::1", .privateRange),
        ("::ffff:10.1.2.3", .privateRange),
        ("224.0.0.1", .multicastOrReserved), ("239.255.255.250", .multicastOrReserved),
        ("240.0.0.1", .multicastOrReserved), ("255.255.255.255", .multicastOrReserved),
        ("ff02::1", .multicastOrReserved), ("::2", .multicastOrReserved),
        ("8.8.8.8", .global), ("172.15.255.255", .global), ("172.32.0.0", .global),
        ("100.63.255.255", .global), ("100.128.0.0", .global), ("198.17.255.255", .global),
        ("198.20.0.0", .global), ("198.51.100.7", .global), ("192.0.2.1", .global),
        ("2001:db8::1", .global), ("2606:4700::1111", .global), ("fe00::1", .global),
        ("::ffff:8.8.8.8", .global), ("11.0.0.0", .global), ("9.255.255.255", .global),
    ])
    func addressClasses(text: String, expected: AddressClass) throws {
        let ip = try #require(IPAddress(text))
        #expect(AddressClass.of(ip) == expected)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "1.2.3.-1", "01.2.3.4", "1.2.3.4 ", "a.b.c.d", "::g", "fe80::1%lo", "1:2"])
    func notAddresses(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func addressesPrint() throws {
        #expect(try #require(IPAddress("10.1.2.3")).description == "10.1.2.3")
        #expect(try #require(IPAddress("2001:0db8:0:0::1")).description == "2001:db8::1")
        #expect(try #require(IPAddress("::ffff:127.0.0.1")).embeddedV4 == 0x7f00_0001)
        #expect(try #require(IPAddress("::1")).embeddedV4 == nil)
    }

    // MARK: the rule

    func policy(_ entries: [String]) throws -> EgressPolicy {
        EgressPolicy(try entries.map(EgressRule.parse))
    }

    @Test func hostAndPortMustBothMatch() throws {
        let p = try policy(["api.example.com:443", "10.1.2.3:8080", "[2001:db8::1]:443", "api.example.com:8443"])
        #expect(p.check(host: "api.example.com", port: 443) == nil)
        #expect(p.check(host: "API.EXAMPLE.COM.", port: 8443) == nil)
        #expect(p.check(host: "api.example.com", port: 80) == .portNotAllowed)
        #expect(p.check(host: "example.com", port: 443) == .hostNotAllowed)
        #expect(p.check(host: "evil.api.example.com", port: 443) == .hostNotAllowed)
        #expect(p.check(host: "api.example.com.evil", port: 443) == .hostNotAllowed)
        #expect(p.check(host: "10.1.2.3", port: 8080) == nil)
        #expect(p.check(host: "::ffff:10.1.2.3", port: 8080) == nil)
        #expect(p.check(host: "[::ffff:10.1.2.3]", port: 8080) == nil)
        #expect(p.check(host: "10.1.2.3", port: 443) == .portNotAllowed)
        #expect(p.check(host: "10.1.2.4", port: 8080) == .hostNotAllowed)
        #expect(p.check(host: "[2001:db8::1]", port: 443) == nil)
        #expect(p.check(host: "2001:db8:0::1", port: 443) == nil)
        #expect(p.check(host: "", port: 443) == .hostNotAllowed)
    }

    @Test func aNameNeverMatchesAnAddressEntryOrTheReverse() throws {
        let p = try policy(["10.1.2.3:80", "db.internal:5432"])
        // A name that happens to be spelled like nothing listed, and an address the name may resolve to.
        #expect(p.check(host: "db.internal", port: 5432) == nil)
        #expect(p.check(host: "10.1.2.3", port: 5432) == .portNotAllowed)
        #expect(p.check(host: "10.1.2.4", port: 5432) == .hostNotAllowed)
        #expect(p.check(host: "db.internal", port: 80) == .portNotAllowed)
    }

    @Test func emptyListAllowsNothing() {
        #expect(EgressPolicy([]).check(host: "api.example.com", port: 443) == .hostNotAllowed)
    }

    @Test(arguments: [
        // (address, named as a literal, own addresses, refused)
        ("8.8.8.8", false, [String](), false),
        ("198.51.100.7", false, [], false),
        ("2606:4700::1111", false, [], false),
        ("10.1.2.3", false, [], true),          // private by name: refused
        ("10.1.2.3", true, [], false),          // private as a listed literal: passes
        ("fd00::5", true, [], false),
        ("fd00::5", false, [], true),
        ("100.64.1.1", false, [], true),
        ("127.0.0.1", false, [], true),
        ("127.0.0.1", true, [], true),          // loopback: never, even as a literal
        ("::1", true, [], true),
        ("::ffff:127.0.0.1", true, [], true),
        ("169.254.169.254", true, [], true),    // cloud metadata: never
        ("0.0.0.0", true, [], true),
        ("224.0.0.251", true, [], true),
        ("203.0.113.9", true, ["203.0.113.9"], true),   // the gateway host's own address: never
        ("203.0.113.9", false, ["203.0.113.9"], true),
        ("::ffff:203.0.113.9", true, ["203.0.113.9"], true),
        ("172.17.0.1", true, ["172.17.0.1"], true),     // a bridge gateway of this host
        ("203.0.113.10", false, ["203.0.113.9"], false),
    ])
    func resolvedAddresses(address: String, literal: Bool, own: [String], refused: Bool) throws {
        let ip = try #require(IPAddress(address))
        let ownSet = Set(own.compactMap(IPAddress.init))
        let result = EgressPolicy.checkResolved(ip, requestedLiteral: literal, ownAddresses: ownSet)
        #expect((result != nil) == refused)
        if refused { #expect(result == .forbiddenAddress) }
    }

    // MARK: config

    func load(_ text: String) throws -> ConfigLoader.Loaded {
        try ConfigLoader.parse(data: Data(text.utf8), file: "t.json")
    }

    func message(_ text: String) -> String {
        do { _ = try load(text); return "" } catch let e as ProxyError { return e.message } catch { return "\(error)" }
    }

    @Test func theKeyLoadsDeduplicatedAndRoundTrips() throws {
        let l = try load(#"{"mcpServers": {"a": {"command": "x", "egress": ["API.example.com:443", "api.example.com:443", "10.1.2.3:8080"]}}}"#)
        let s = try #require(l.config.servers.first)
        #expect(s.egress?.map(\.description) == ["api.example.com:443", "10.1.2.3:8080"])
        #expect(ConfigFile.json(for: s)["egress"] as? [String] == ["api.example.com:443", "10.1.2.3:8080"])
        let none = try load(#"{"mcpServers": {"a": {"command": "x"}}}"#)
        #expect(none.config.servers.first?.egress == nil)
        let empty = try load(#"{"mcpServers": {"a": {"command": "x", "egress": []}}}"#)
        #expect(empty.config.servers.first?.egress == [])
    }

    @Test(arguments: [
        (#"{"mcpServers": {"a": {"command": "x", "egress": ["api.example.com"]}}}"#, "mcpServers.a.egress[0]: egress entry \"api.example.com\": a port is required"),
        (#"{"mcpServers": {"a": {"command": "x", "egress": ["ok.example:443", 443]}}}"#, "mcpServers.a.egress[1]: expected a \"host:port\" string, found a number"),
        (#"{"mcpServers": {"a": {"command": "x", "egress": "api.example.com:443"}}}"#, "mcpServers.a.egress: expected an array of \"host:port\" strings, found a string"),
        (#"{"mcpServers": {"a": {"url": "http://127.0.0.1:1/mcp", "egress": ["x.example:443"]}}}"#, "egress applies to servers the gateway launches"),
        (#"{"mcpServers": {"a": {"command": "x", "egres": ["x.example:443"]}}}"#, "unknown key; did you mean \"egress\"?"),
        (#"{"mcpServers": {"a": {"command": "x", "egrss": ["x.example:443"]}}}"#, "did you mean \"egress\"?"),
    ])
    func configMistakesAreErrors(text: String, expected: String) {
        let m = message(text)
        #expect(m.contains(expected), "got: \(m)")
    }
}

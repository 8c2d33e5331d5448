import Foundation
import Testing
@testable import Isolation

/// The docker option parser against pflag's rules, one row per spelling.
@Suite("Docker CLI parser: pflag's rules")
struct DockerCLITests {
    struct Row: Sendable, CustomStringConvertible {
        let args: [String]
        /// Parsed options as `name=value` joined by spaces, then ` | ` and the positionals;
        /// or `error` when docker rejects the line.
        let expected: String
        init(_ args: [String], _ expected: String) { self.args = args; self.expected = expected }
        var description: String { args.joined(separator: " ") }
    }

    static func render(_ p: DockerCLI.Parsed) -> String {
        if p.error != nil { return "error" }
        var s = p.options.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
        if !p.positionals.isEmpty { s += " | " + p.positionals.map(\.value).joined(separator: " ") }
        return s
    }

    static let rows: [Row] = [
        // Combined short flags (issue 9's spellings first).
        .init(["-iv/var/run/docker.sock:/s"], "interactive=true volume=/var/run/docker.sock:/s"),
        .init(["-iu0"], "interactive=true user=0"),
        .init(["-iu", "0"], "interactive=true user=0"),
        .init(["-ui0"], "user=i0"),
        .init(["-u0"], "user=0"),
        .init(["-u=0"], "user=0"),
        .init(["-u", "0"], "user=0"),
        .init(["-u="], "user=="),
        .init(["-u"], "error"),
        .init(["-iu"], "error"),
        .init(["-it"], "interactive=true tty=true"),
        .init(["-ti"], "tty=true interactive=true"),
        .init(["-itd"], "interactive=true tty=true detach=true"),
        .init(["-i=false"], "interactive=false"),
        .init(["-i=t"], "interactive=true"),
        .init(["-i=0"], "interactive=false"),
        .init(["-i=maybe"], "error"),
        .init(["-i="], "error"),
        .init(["-iq"], "interactive=true quiet=true"),
        .init(["-iP"], "interactive=true publish-all=true"),
        .init(["-ip", "80:80"], "interactive=true publish=80:80"),
        .init(["-ip80:80"], "interactive=true publish=80:80"),
        .init(["-ie", "A=1"], "interactive=true env=A=1"),
        .init(["-eA=1"], "env=A=1"),
        .init(["-e=A=1"], "env=A=1"),
        .init(["-ih", "box"], "interactive=true hostname=box"),
        .init(["-hbox"], "hostname=box"),
        .init(["-w/app"], "workdir=/app"),
        .init(["-m512m"], "memory=512m"),
        .init(["-m", "1g"], "memory=1g"),
        .init(["-c512"], "cpu-shares=512"),
        .init(["-lfoo=bar"], "label=foo=bar"),
        .init(["-itv/a:/b"], "interactive=true tty=true volume=/a:/b"),
        .init(["-v/a:/b:ro"], "volume=/a:/b:ro"),
        .init(["-v", "-u0"], "volume=-u0"),
        .init(["-x"], "error"),
        .init(["-iX"], "error"),
        .init(["-H"], "error"),
        .init(["-a", "stdout"], "attach=stdout"),
        .init(["-astdin"], "attach=stdin"),
        // Long flags.
        .init(["--user=0"], "user=0"),
        .init(["--user", "0"], "user=0"),
        .init(["--user="], "user="),
        .init(["--user"], "error"),
        .init(["--user", "--privileged"], "user=--privileged"),
        .init(["--user", "-v/x:/y"], "user=-v/x:/y"),
        .init(["--volume=/a:/b"], "volume=/a:/b"),
        .init(["--volume", "/a:/b"], "volume=/a:/b"),
        .init(["--mount=type=bind,src=/a,dst=/b"], "mount=type=bind,src=/a,dst=/b"),
        .init(["--network=host"], "network=host"),
        .init(["--net=host"], "network=host"),
        .init(["--net", "host"], "network=host"),
        .init(["--net-alias=a"], "network-alias=a"),
        .init(["--dns-opt", "ndots:1"], "dns-option=ndots:1"),
        .init(["--env=A=B=C"], "env=A=B=C"),
        .init(["--nope"], "error"),
        .init(["--nope=1"], "error"),
        .init(["---privileged"], "error"),
        .init(["--=x"], "error"),
        .init(["--Privileged"], "error"),
        .init(["--PRIVILEGED"], "error"),
        // Every ParseBool spelling.
        .init(["--privileged"], "privileged=true"),
        .init(["--privileged=1"], "privileged=true"),
        .init(["--privileged=t"], "privileged=true"),
        .init(["--privileged=T"], "privileged=true"),
        .init(["--privileged=TRUE"], "privileged=true"),
        .init(["--privileged=true"], "privileged=true"),
        .init(["--privileged=True"], "privileged=true"),
        .init(["--privileged=0"], "privileged=false"),
        .init(["--privileged=f"], "privileged=false"),
        .init(["--privileged=F"], "privileged=false"),
        .init(["--privileged=FALSE"], "privileged=false"),
        .init(["--privileged=false"], "privileged=false"),
        .init(["--privileged=False"], "privileged=false"),
        .init(["--privileged=tRUE"], "error"),
        .init(["--privileged=yes"], "error"),
        .init(["--privileged=on"], "error"),
        .init(["--privileged="], "error"),
        .init(["--privileged=2"], "error"),
        .init(["--privileged= true"], "error"),
        .init(["--privileged", "false"], "privileged=true | false"),
        .init(["--use-api-socket=t"], "use-api-socket=true"),
        .init(["--use-api-socket=T"], "use-api-socket=true"),
        .init(["--use-api-socket"], "use-api-socket=true"),
        .init(["--read-only=f"], "read-only=false"),
        .init(["--read-only=0"], "read-only=false"),
        .init(["--init=F"], "init=false"),
        .init(["--tty=False"], "tty=false"),
        .init(["--detach=FALSE"], "detach=false"),
        .init(["--rm=0"], "rm=false"),
        .init(["--oom-kill-disable=1"], "oom-kill-disable=true"),
        .init(["--sig-proxy=false"], "sig-proxy=false"),
        .init(["--interactive=true"], "interactive=true"),
        .init(["--no-healthcheck"], "no-healthcheck=true"),
        .init(["--publish-all=t"], "publish-all=true"),
        .init(["--disable-content-trust=0"], "disable-content-trust=false"),
        .init(["--quiet"], "quiet=true"),
        // Repeated flags are all kept, in order.
        .init(["--user", "1", "--user", "0"], "user=1 user=0"),
        .init(["-u1", "-u0"], "user=1 user=0"),
        .init(["--privileged=false", "--privileged"], "privileged=false privileged=true"),
        .init(["--cap-add", "A", "--cap-add=B"], "cap-add=A cap-add=B"),
        .init(["-v/a:/a", "-v", "/b:/b", "--volume=/c:/c"], "volume=/a:/a volume=/b:/b volume=/c:/c"),
        .init(["-e", "A", "-eB", "--env", "C"], "env=A env=B env=C"),
        .init(["--network", "none", "--net", "bridge"], "network=none network=bridge"),
        .init(["--security-opt", "a", "--security-opt=b"], "security-opt=a security-opt=b"),
        // `--` and positionals.
        .init(["--", "--privileged"], " | --privileged"),
        .init(["-i", "--", "-u0"], "interactive=true | -u0"),
        .init(["img", "--privileged"], " | img --privileged"),
        .init(["-i", "img", "-u0"], "interactive=true | img -u0"),
        .init(["-", "x"], " | - x"),
        .init([""], " | "),
        .init(["--user", "--", "img"], "user=-- | img"),
        // Value flags of every kind take the next argument whatever it is.
        .init(["--cap-add", "--privileged"], "cap-add=--privileged"),
        .init(["--pids-limit", "-1"], "pids-limit=-1"),
        .init(["--pids-limit=-1"], "pids-limit=-1"),
        .init(["--memory", "-1"], "memory=-1"),
        .init(["--entrypoint", ""], "entrypoint="),
        .init(["--tmpfs", "/t:exec"], "tmpfs=/t:exec"),
        .init(["--ulimit", "nofile=1:2"], "ulimit=nofile=1:2"),
        .init(["--sysctl", "net.x=1"], "sysctl=net.x=1"),
        .init(["--group-add", "0"], "group-add=0"),
        .init(["--group-add=docker"], "group-add=docker"),
        .init(["--pid=host"], "pid=host"),
        .init(["--ipc", "container:x"], "ipc=container:x"),
        .init(["--uts=host"], "uts=host"),
        .init(["--userns=host"], "userns=host"),
        .init(["--cgroupns", "host"], "cgroupns=host"),
        .init(["--device=/dev/kvm"], "device=/dev/kvm"),
        .init(["--env-file", "/root/x"], "env-file=/root/x"),
        .init(["--label-file=/x"], "label-file=/x"),
        .init(["--volumes-from", "c"], "volumes-from=c"),
        .init(["--runtime=runsc"], "runtime=runsc"),
        .init(["--log-driver", "json-file"], "log-driver=json-file"),
        .init(["--cgroup-parent", "/"], "cgroup-parent=/"),
        .init(["--gpus", "all"], "gpus=all"),
        .init(["--annotation", "a=b"], "annotation=a=b"),
        .init(["--health-start-interval", "1s"], "health-start-interval=1s"),
        .init(["--help"], "help=true"),
        .init(["--cpus=0.5"], "cpus=0.5"),
        .init(["--shm-size", "64m"], "shm-size=64m"),
        .init(["--stop-timeout", "5"], "stop-timeout=5"),
        .init(["--storage-opt", "size=1G"], "storage-opt=size=1G"),
        .init(["--platform", "linux/amd64"], "platform=linux/amd64"),
    ]

    @Test("parses like pflag", arguments: rows)
    func parse(_ row: Row) {
        #expect(Self.render(DockerCLI.parse(row.args)) == row.expected)
    }

    @Test("without stopping at positionals, later options are still read")
    func interspersed() {
        let p = DockerCLI.parse(["x", "--privileged"], stopAtPositional: false)
        #expect(p.options.map(\.name) == ["privileged"])
        #expect(p.positionals.map(\.value) == ["x"])
    }

    @Test("the option's index is the argument it was read from")
    func indexes() {
        let p = DockerCLI.parse(["--user", "1", "-iu0", "--cap-add=X"])
        #expect(p.options.map(\.index) == [0, 2, 2, 3])
        #expect(p.options[2].spelled == "-iu0")
        #expect(DockerCLI.parse(["-i", "--bad"]).error?.index == 1)
    }

    @Test("every flag docker run lists in its help is known with the right kind")
    func flagTableMatchesHelp() {
        // From `docker run --help` (docker 28): flags listed with a type take a value.
        for f in ["add-host", "attach", "cap-add", "cpus", "device", "env", "env-file", "group-add", "gpus", "mount",
                  "network", "pids-limit", "security-opt", "sysctl", "tmpfs", "ulimit", "user", "volume"] {
            #expect(DockerCLI.flags[f] == .value, "\(f)")
        }
        for f in ["detach", "init", "interactive", "privileged", "read-only", "rm", "tty", "use-api-socket", "help"] {
            #expect(DockerCLI.flags[f] == .bool, "\(f)")
        }
        for (c, name) in DockerCLI.shorthands { #expect(DockerCLI.flags[name] != nil, "-\(c)") }
    }

    struct IntRow: Sendable, CustomStringConvertible {
        let text: String
        let value: Int64?
        var description: String { text }
    }

    static let ints: [IntRow] = [
        .init(text: "0", value: 0), .init(text: "00", value: 0), .init(text: "+0", value: 0), .init(text: "-0", value: 0),
        .init(text: "0x0", value: 0), .init(text: "0X10", value: 16), .init(text: "0o17", value: 15), .init(text: "017", value: 15),
        .init(text: "0b101", value: 5), .init(text: "-1", value: -1), .init(text: "256", value: 256), .init(text: "1_000", value: 1000),
        .init(text: "0x_10", value: 16), .init(text: "", value: nil), .init(text: "1.0", value: nil), .init(text: " 1", value: nil),
        .init(text: "08", value: nil), .init(text: "-", value: nil), .init(text: "9223372036854775807", value: Int64.max),
        .init(text: "9223372036854775808", value: nil),
    ]

    @Test("integers as Go's ParseInt(s, 0, 64) reads them", arguments: ints)
    func goInts(_ row: IntRow) {
        #expect(DockerCLI.parseGoInt(row.text) == row.value)
    }

    struct UserRow: Sendable, CustomStringConvertible {
        let spec: String
        let root: Bool
        var description: String { spec }
    }

    static let users: [UserRow] = [
        .init(spec: "0", root: true), .init(spec: "00", root: true), .init(spec: "+0", root: true), .init(spec: "-0", root: true),
        .init(spec: "000000", root: true), .init(spec: "root", root: true), .init(spec: "0:0", root: true),
        .init(spec: "65534:0", root: true), .init(spec: "65534:00", root: true), .init(spec: "65534:+0", root: true),
        .init(spec: "65534:root", root: true), .init(spec: "root:65534", root: true), .init(spec: "", root: true),
        .init(spec: ":65534", root: true), .init(spec: "65534:", root: true), .init(spec: "65534", root: false),
        .init(spec: "65534:65534", root: false), .init(spec: "1000:1000", root: false), .init(spec: "nobody", root: false),
        .init(spec: "node:node", root: false), .init(spec: "010", root: false), .init(spec: "0x0", root: false),
    ]

    @Test("root in every spelling, as user or group", arguments: users)
    func rootUsers(_ row: UserRow) {
        #expect(DockerPlanner.isRootUser(row.spec) == row.root)
    }

    struct ImageRow: Sendable, CustomStringConvertible {
        let image: String
        let valid: Bool
        var description: String { image }
    }

    static let images: [ImageRow] = [
        .init(image: "python:3.11", valid: true), .init(image: "mcpproxy-fixture:test", valid: true),
        .init(image: "ghcr.io/acme/mcp:1.2", valid: true), .init(image: "localhost:5000/x/y:latest", valid: true),
        .init(image: "alpine@sha256:" + String(repeating: "a", count: 64), valid: true), .init(image: "a/b/c", valid: true),
        .init(image: "my_img__x", valid: true), .init(image: "r.example/py:custom", valid: true),
        .init(image: "--privileged", valid: false), .init(image: "-v/x:/y", valid: false), .init(image: "", valid: false),
        .init(image: "python 3", valid: false), .init(image: "python:3.11\n", valid: false), .init(image: "Python:3", valid: false),
        .init(image: "a:b:c", valid: false), .init(image: "a/", valid: false), .init(image: " python", valid: false),
        .init(image: "python:-x", valid: false),
    ]

    @Test("image references by the distribution grammar", arguments: images)
    func imageRefs(_ row: ImageRow) {
        #expect(DockerCLI.isValidImageReference(row.image) == row.valid)
    }

    struct MountRow: Sendable, CustomStringConvertible {
        let value: String
        let type: String?
        let source: String?
        let readOnly: Bool?
        var description: String { value }
    }

    static let mounts: [MountRow] = [
        .init(value: "type=bind,src=/a,dst=/b", type: "bind", source: "/a", readOnly: false),
        .init(value: "type=bind,source=/a,target=/b,readonly", type: "bind", source: "/a", readOnly: true),
        .init(value: "type=bind,source=/a,target=/b,ro=0", type: "bind", source: "/a", readOnly: false),
        .init(value: "type=bind,source=/a,target=/b,readonly=f", type: "bind", source: "/a", readOnly: false),
        .init(value: "type=bind,source=/a,target=/b,readonly=yes", type: "bind", source: "/a", readOnly: nil),
        .init(value: "\"type=bind\",\"source=/var/run/docker.sock\",target=/s", type: "bind", source: "/var/run/docker.sock", readOnly: false),
        .init(value: "type=bind,\"source=/a,b\",target=/s", type: "bind", source: "/a,b", readOnly: false),
        .init(value: "TYPE=BIND,SRC=/a,DST=/b", type: "bind", source: "/a", readOnly: false),
        .init(value: "type=bind,src=/ok,src=/var/run/docker.sock,dst=/b", type: "bind", source: "/var/run/docker.sock", readOnly: false),
        .init(value: "src=vol,dst=/b", type: "volume", source: "vol", readOnly: false),
        .init(value: "type=volume,src=v,dst=/b,volume-opt=device=/var/run,volume-opt=o=bind", type: "volume", source: "v", readOnly: false),
        .init(value: "type=bind,source=\"/a\",target=/b", type: nil, source: nil, readOnly: nil),
        .init(value: "\"type=bind,source=/a", type: nil, source: nil, readOnly: nil),
        .init(value: "type=bind,bogus,dst=/b", type: nil, source: nil, readOnly: nil),
        .init(value: "", type: nil, source: nil, readOnly: nil),
        .init(value: "type=bind,src=/a,dst=/b\nsrc=/etc", type: nil, source: nil, readOnly: nil),
    ]

    @Test("--mount with docker's CSV rules", arguments: mounts)
    func csvMounts(_ row: MountRow) {
        switch DockerCLI.parseMount(row.value) {
        case .failure:
            #expect(row.type == nil)
        case .success(let m):
            #expect(m.type == row.type)
            #expect(m.source == row.source)
            #expect(m.readOnly == row.readOnly)
            // Rendering and re-parsing gives the same mount.
            if case .success(let again) = DockerCLI.parseMount(m.rendered) { #expect(again == m) } else { Issue.record("re-parse failed: \(m.rendered)") }
        }
    }

    @Test("capabilities are normalized and combined as docker does")
    func capabilities() {
        #expect(DockerCLI.normalizeCapability(" sys_admin ") == "CAP_SYS_ADMIN")
        #expect(DockerCLI.normalizeCapability("cap_net_raw") == "CAP_NET_RAW")
        #expect(DockerCLI.normalizeCapability("all") == "ALL")
        #expect(DockerCLI.normalizedCapabilities(["chown", "CAP_KILL", "kill"]) == ["CAP_CHOWN", "CAP_KILL"])
        var f = DockerRunFacts()
        f.capAdd = ["CAP_CHOWN"]; f.capDrop = ["ALL", "CAP_CHOWN"]
        #expect(f.effectiveCapabilitySet == ["CAP_CHOWN"])  // dropped ALL: exactly the added ones
        f.capDrop = ["CAP_NET_RAW"]
        #expect(f.effectiveCapabilitySet == DockerRunFacts.dockerDefaultCapabilities.subtracting(["CAP_NET_RAW"]))
        f.capAdd = ["ALL"]
        #expect(f.effectiveCapabilitySet.count == DockerCLI.capabilities.count - 1)
        f.privileged = true
        #expect(f.effectiveCapabilitySet.count == DockerCLI.capabilities.count)
    }

    @Test("sizes and CPUs as docker reads them")
    func units() {
        let mib: Int64 = 1024 * 1024
        #expect(DockerCLI.parseBytes("512m") == 512 * mib)
        #expect(DockerCLI.parseBytes("1.5g") == 1536 * mib)
        #expect(DockerCLI.parseBytes("64 MiB") == 64 * mib)
        #expect(DockerCLI.parseBytes("0") == 0)
        #expect(DockerCLI.parseBytes("-1") == nil)
        #expect(DockerCLI.parseBytes("64m,exec") == nil)
        #expect(DockerCLI.parseNanoCPUs("1.0") == 1_000_000_000)
        #expect(DockerCLI.parseNanoCPUs("0.25") == 250_000_000)
        #expect(DockerCLI.parseNanoCPUs("-1") == nil)
    }
}

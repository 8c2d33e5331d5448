import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a scrape could read about a server's processes; nil where not available.
public struct ProcessSample: Sendable, Equatable {
    public var memoryBytes: Double?
    public var pids: Double?
    public var cpuSeconds: Double?
    /// The cgroup's limits (nil: none set, or not a cgroup): what the runtime monitor compares with.
    public var memoryLimitBytes: Double?
    public var pidsLimit: Double?
    public var cpuLimitCores: Double?
    public init(memoryBytes: Double? = nil, pids: Double? = nil, cpuSeconds: Double? = nil,
                memoryLimitBytes: Double? = nil, pidsLimit: Double? = nil, cpuLimitCores: Double? = nil) {
        self.memoryBytes = memoryBytes
        self.pids = pids
        self.cpuSeconds = cpuSeconds
        self.memoryLimitBytes = memoryLimitBytes
        self.pidsLimit = pidsLimit
        self.cpuLimitCores = cpuLimitCores
    }
}

/// Reads a server's resource use at scrape time, from files the kernel keeps anyway: a few
/// small reads per server, nothing sampled in the background.
///
/// - sandbox: the server's own cgroup (the launcher makes one per launch). cgroup v2:
///   `memory.current`, `pids.current`, `cpu.stat` `usage_usec`. v1 (one tree per controller):
///   `memory.usage_in_bytes`, `pids.current`, and `cpuacct.usage` where cpuacct shares the cpu
///   tree; otherwise the CPU time of the cgroup's live processes from `/proc/PID/stat`.
/// - isolation none: the server's own process (`/proc/PID/stat`: resident set and CPU time; its
///   children are not included).
/// - docker: the container's cgroup (see `ContainerBackend.resources`), read as for sandbox.
public enum ProcessStats {
    /// The stats of a cgroup given as its directories (one for v2, one per controller for v1).
    public static func cgroup(_ dirs: [String]) -> ProcessSample {
        var s = ProcessSample()
        for dir in dirs {
            if s.memoryBytes == nil {
                s.memoryBytes = number(dir + "/memory.current") ?? number(dir + "/memory.usage_in_bytes")
            }
            if s.pids == nil { s.pids = number(dir + "/pids.current") }
            if s.cpuSeconds == nil {
                if let stat = read(dir + "/cpu.stat"), let usec = field(stat, "usage_usec") {
                    s.cpuSeconds = usec / 1e6
                } else if let ns = number(dir + "/cpuacct.usage") {
                    s.cpuSeconds = ns / 1e9
                }
            }
        }
        for dir in dirs {
            if s.memoryLimitBytes == nil { s.memoryLimitBytes = limit(dir + "/memory.max") ?? limit(dir + "/memory.limit_in_bytes") }
            if s.pidsLimit == nil { s.pidsLimit = limit(dir + "/pids.max") }
            if s.cpuLimitCores == nil {
                if let text = read(dir + "/cpu.max") { s.cpuLimitCores = cpuMax(text) }
                else if let quota = number(dir + "/cpu.cfs_quota_us"), quota > 0, let period = number(dir + "/cpu.cfs_period_us"), period > 0 {
                    s.cpuLimitCores = quota / period
                }
            }
        }
        if s.cpuSeconds == nil {
            // v1 without cpuacct on the cpu tree: add up the live members' CPU time.
            for dir in dirs {
                guard let procs = read(dir + "/cgroup.procs") else { continue }
                let pids = procs.split(separator: "\n").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
                guard !pids.isEmpty else { continue }
                s.cpuSeconds = pids.compactMap { process(pid: $0).cpuSeconds }.reduce(0, +)
                break
            }
        }
        return s
    }

    /// One process's resident set and CPU time (user + system), from `/proc/PID/stat`.
    public static func process(pid: Int32) -> ProcessSample {
        guard let text = read("/proc/\(pid)/stat") else { return ProcessSample() }
        return parseStat(text, ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))), pageSize: Double(sysconf(Int32(_SC_PAGESIZE))))
    }

    /// Parses `/proc/PID/stat`: fields after the command name (which may hold spaces and
    /// parentheses, so the last `)` ends it); utime and stime are fields 14 and 15, rss field 24.
    static func parseStat(_ text: String, ticksPerSecond: Double, pageSize: Double) -> ProcessSample {
        guard let close = text.lastIndex(of: ")") else { return ProcessSample() }
        let rest = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // rest[0] is field 3 (state): field n is rest[n - 3].
        guard rest.count > 21, let utime = Double(rest[11]), let stime = Double(rest[12]), let rss = Double(rest[21]),
              ticksPerSecond > 0 else { return ProcessSample() }
        return ProcessSample(memoryBytes: rss * pageSize, pids: nil, cpuSeconds: (utime + stime) / ticksPerSecond)
    }

    /// A `key value` line's value from a flat-keyed file such as `cpu.stat`.
    static func field(_ text: String, _ key: String) -> Double? {
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == key { return Double(parts[1]) }
        }
        return nil
    }

    /// A limit file's value: nil for "max" and for v1's "unlimited" (a page-rounded 2^63).
    static func limit(_ path: String) -> Double? {
        guard let v = number(path), v > 0, v < 1e18 else { return nil }
        return v
    }

    /// cgroup v2 `cpu.max` ("QUOTA PERIOD", or "max PERIOD" for none) in cores.
    static func cpuMax(_ text: String) -> Double? {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count >= 2, let q = Double(parts[0]), let p = Double(parts[1]), q > 0, p > 0 else { return nil }
        return q / p
    }

    static func number(_ path: String) -> Double? {
        read(path).flatMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// A small kernel file (they report size 0, so read until EOF).
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while out.count < 1 << 20 {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

import Foundation
import ProxyCore

/// Where a running server's resource use (memory, CPU time, pids) can be read: what `/metrics`,
/// `mcpproxy status` and the runtime monitor sample. Each backend says it for its own servers.
public enum ResourceSource: Sendable, Equatable {
    /// cgroup directories (one for v2, one per controller for v1).
    case cgroup([String])
    /// One process (its children not included).
    case process(Int32)
    case unknown
}

/// Reads a process's cgroup directories from the kernel's own files.
public enum CgroupPaths {
    /// The directories of the cgroups listed in `/proc/PID/cgroup` (`procCgroup`), resolved
    /// against the cgroup mounts in `/proc/self/mountinfo` (`mountinfo`). v2 (`0::/path`): one
    /// directory under the cgroup2 mount. v1 (`N:ctrl,ctrl:/path`): one per hierarchy that has
    /// memory, cpu/cpuacct or pids. Pure, so both layouts are unit-tested.
    public static func directories(procCgroup: String, mountinfo: String) -> [String] {
        var v2Mount: String?
        var v1Mounts: [String: String] = [:]  // controller -> mount point
        for line in mountinfo.split(separator: "\n") {
            // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS"
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " ")
            let right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3 else { continue }
            let mountPoint = String(left[4])
            // Only mounts of the whole hierarchy (root "/"): a container's view is a subtree.
            guard left[3] == "/" else { continue }
            if right[0] == "cgroup2" { if v2Mount == nil { v2Mount = mountPoint } }
            else if right[0] == "cgroup" {
                for option in right[2].split(separator: ",") where v1Mounts[String(option)] == nil {
                    v1Mounts[String(option)] = mountPoint
                }
            }
        }
        var dirs: [String] = []
        for line in procCgroup.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            if parts[0] == "0", parts[1].isEmpty {
                if let m = v2Mount { dirs.append(join(m, path)) }
                continue
            }
            let controllers = parts[1].split(separator: ",").map(String.init)
            guard controllers.contains(where: { ["memory", "cpu", "cpuacct", "pids"].contains($0) }),
                  let m = controllers.lazy.compactMap({ v1Mounts[$0] }).first else { continue }
            let dir = join(m, path)
            if !dirs.contains(dir) { dirs.append(dir) }
        }
        return dirs
    }

    static func join(_ mount: String, _ path: String) -> String {
        path == "/" ? mount : mount + path
    }

    /// The cgroup directories of a live process, or nil when it is gone.
    public static func of(pid: Int32) -> [String]? {
        guard let cg = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8),
              let mi = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        let dirs = directories(procCgroup: cg, mountinfo: mi)
        return dirs.isEmpty ? nil : dirs
    }
}

/// Container ids → the cgroup directories of their init process, looked up once per container
/// (`ENGINE inspect` costs tens of milliseconds; a scrape or a monitor tick must not pay it).
final class ContainerCgroupCache: @unchecked Sendable {  // `known` is only touched under `lock`
    private let lock = NSLock()
    private var known: [String: [String]] = [:]

    func directories(container id: String, plan: LaunchPlan) async -> [String]? {
        if let dirs = lock.withLock({ known[id] }) { return dirs }
        let engine = ContainerLifecycle.engine(of: plan)
        let r = await engine.run(["inspect", "--format", "{{.State.Pid}}", id], environment: plan.environment, timeout: 10)
        guard r.status == 0, let pid = Int32(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
              let dirs = CgroupPaths.of(pid: pid) else { return nil }
        lock.withLock {
            if known.count > 4096 { known.removeAll() }  // ids of stopped containers are never asked again
            known[id] = dirs
        }
        return dirs
    }
}

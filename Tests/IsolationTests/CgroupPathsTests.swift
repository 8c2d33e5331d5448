import Foundation
import Testing
@testable import Isolation

/// `CgroupPaths.directories`: a process's cgroup directories from /proc/PID/cgroup and the
/// mounts, for both cgroup layouts (what metrics and `status` read for docker/podman servers).
@Suite struct CgroupPathsTests {
    static let v1Mounts = """
    25 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
    26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,name=systemd
    29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid shared:13 - cgroup cgroup rw,memory
    30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 - cgroup cgroup rw,cpu,cpuacct
    31 25 0:28 / /sys/fs/cgroup/pids rw,nosuid shared:15 - cgroup cgroup rw,pids
    32 25 0:29 / /sys/fs/cgroup/devices rw,nosuid shared:16 - cgroup cgroup rw,devices
    """
    static let v1Proc = """
    12:pids:/docker/abc123
    9:devices:/docker/abc123
    4:cpu,cpuacct:/docker/abc123
    3:memory:/docker/abc123
    1:name=systemd:/docker/abc123
    """

    @Test func v1GivesOneDirectoryPerMeasuredHierarchy() {
        let dirs = CgroupPaths.directories(procCgroup: Self.v1Proc, mountinfo: Self.v1Mounts)
        #expect(dirs == ["/sys/fs/cgroup/pids/docker/abc123", "/sys/fs/cgroup/cpu,cpuacct/docker/abc123",
                         "/sys/fs/cgroup/memory/docker/abc123"])
    }

    @Test func v2GivesTheUnifiedDirectory() {
        let mounts = """
        35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
        36 24 0:31 / /proc rw - proc proc rw
        """
        #expect(CgroupPaths.directories(procCgroup: "0::/system.slice/docker-abc.scope\n", mountinfo: mounts)
                == ["/sys/fs/cgroup/system.slice/docker-abc.scope"])
        #expect(CgroupPaths.directories(procCgroup: "0::/\n", mountinfo: mounts) == ["/sys/fs/cgroup"])
        // Hybrid: the v2 line is used only when a cgroup2 mount exists.
        #expect(CgroupPaths.directories(procCgroup: "0::/x\n", mountinfo: Self.v1Mounts) == [])
    }

    @Test func subtreeMountsAndUnknownLinesAreIgnored() {
        // A bind of a subtree (root not "/") cannot resolve host paths: not used.
        let mounts = "40 25 0:26 /docker/other /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        #expect(CgroupPaths.directories(procCgroup: "3:memory:/docker/abc\n", mountinfo: mounts) == [])
        #expect(CgroupPaths.directories(procCgroup: "garbage\n\n7:net_cls:/x\n", mountinfo: Self.v1Mounts) == [])
    }

    @Test func aLiveProcessResolvesOnThisMachine() throws {
        let dirs = try #require(CgroupPaths.of(pid: getpid()))
        #expect(!dirs.isEmpty)
        #expect(dirs.allSatisfy { $0.hasPrefix("/sys/fs/cgroup") })
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// How a server process is stopped, as data: each step acts on the process (group), then waits
/// up to its deadline for the exit; the last step waits until the exit. Always ends, because the
/// last step is SIGKILL of the whole process group.
public struct StopLadder: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// Close the server's stdin (a stdio server's cue to exit by itself).
        case closeStdin
        /// Send a signal to the server's process group.
        case signal(Int32)
    }

    public struct Step: Sendable, Equatable {
        public var action: Action
        /// Seconds to wait for the exit after acting; nil: until it exits.
        public var wait: Double?
        public init(_ action: Action, wait: Double?) {
            self.action = action
            self.wait = wait
        }
    }

    public var steps: [Step]

    public init(steps: [Step]) { self.steps = steps }

    /// Close stdin and wait `grace`; SIGTERM and wait `grace`; SIGKILL (MCP's stdio shutdown).
    public static func standard(grace: Double) -> StopLadder {
        let g = max(0, grace)
        return StopLadder(steps: [Step(.closeStdin, wait: g), Step(.signal(SIGTERM), wait: g), Step(.signal(SIGKILL), wait: nil)])
    }

    /// The longest the ladder can take before its last step (the rest is the kernel's SIGKILL).
    public var boundedWait: Double { steps.compactMap(\.wait).reduce(0, +) }
}

import Foundation

/// `supervision`: health checks and crash-loop limits of upstream servers (docs/architecture.md,
/// "Per-server lifecycle").
public struct SupervisionConfig: Sendable, Equatable {
    /// Seconds between health pings of a ready server (`ping_interval`).
    public var pingInterval: Double = 30
    /// Pings in a row that may go unanswered while no call is in flight (`ping_misses`).
    public var pingMisses: Int = 3
    /// Failed starts in a row after which a server stays `failed` until its config changes or a
    /// person restarts it (`max_failed_starts`).
    public var maxFailedStarts: Int = 5
    /// Calls in a row that time out, with the process alive, before the server is reported
    /// `unresponsive` (`unresponsive_after`).
    public var unresponsiveAfter: Int = 3

    public init() {}
}

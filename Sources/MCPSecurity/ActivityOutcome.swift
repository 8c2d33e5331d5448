/// How a forwarded tool call ended, as the activity log records it. The raw values are what the
/// database stores and the REST API (`GET /api/v1/activity`) shows.
///
/// Refused calls never reach the upstream and are not in the activity log (the metrics count
/// them: `CallOutcome.refused`).
public enum ActivityOutcome: String, Sendable, Codable, CaseIterable {
    /// The upstream answered with a result (an `isError: true` result included: the call worked,
    /// the tool reported a failure).
    case ok
    /// The upstream answered with a JSON-RPC error, or with a response without a result.
    case error
    /// No answer within `call_tool_timeout`.
    case timeout
    /// The client cancelled the request (`notifications/cancelled`, or it disconnected).
    case cancelled
    /// The call failed before an answer: the server exited, the connection broke.
    case failed

    /// The outcome a stored row holds. Every value ever written is a case; a row edited by hand
    /// to something else reads as `failed`.
    public init(stored: String) { self = ActivityOutcome(rawValue: stored) ?? .failed }
}

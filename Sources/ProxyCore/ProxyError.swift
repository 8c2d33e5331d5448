import Foundation

/// The one error type of the project. Its `code` is stable and maps, through one table
/// (`Code.row`), to a JSON-RPC error code, an HTTP status and a CLI exit status; its `message`
/// says what was wrong, where, and what to do.
public struct ProxyError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A stable error category. Its raw value is the `code` string of REST error bodies.
    public enum Code: String, Sendable, CaseIterable, CustomStringConvertible {
        case parseError, invalidRequest, unknownSession, notAcceptable, methodNotFound
        case invalidArgument, invalidConfig, internalError
        case timeout, upstreamFailed, unavailable
        /// Refused by policy (quarantine, isolation safety rule, intent mismatch).
        case refused
        case unauthorized, notFound, conflict, unsupported, payloadTooLarge
        /// The client cancelled the request (`notifications/cancelled`).
        case cancelled

        public var description: String { rawValue }

        /// One row of the table: how this code is written on each surface.
        public struct Row: Sendable, Equatable {
            public let jsonRPC: Int
            public let http: Int
            public let exit: Int32
            /// When it happens (the `when` column of docs/commands.md).
            public let meaning: String
        }

        /// The table. Every numeric code is a named constant (`JSONRPCErrorCode`, `HTTPStatusCode`,
        /// `ExitStatus`) written once; docs/commands.md shows this table (a test compares them).
        public var row: Row {
            typealias J = JSONRPCErrorCode
            typealias H = HTTPStatusCode
            typealias X = ExitStatus
            switch self {
            case .parseError: return Row(jsonRPC: J.parseError, http: H.badRequest, exit: X.dataError,
                                         meaning: "malformed JSON")
            case .invalidRequest: return Row(jsonRPC: J.invalidRequest, http: H.badRequest, exit: X.dataError,
                                             meaning: "not a JSON-RPC request; a missing `Mcp-Session-Id`; an unsupported `MCP-Protocol-Version`")
            case .unknownSession: return Row(jsonRPC: J.invalidRequest, http: H.notFound, exit: X.noInput,
                                             meaning: "an unknown, expired or foreign `Mcp-Session-Id`")
            case .notAcceptable: return Row(jsonRPC: J.invalidRequest, http: H.notAcceptable, exit: X.usage,
                                            meaning: "`GET /mcp` without `Accept: text/event-stream`")
            case .methodNotFound: return Row(jsonRPC: J.methodNotFound, http: H.notFound, exit: X.usage,
                                             meaning: "unknown method")
            case .invalidArgument: return Row(jsonRPC: J.invalidParams, http: H.badRequest, exit: X.usage,
                                              meaning: "bad params of a protocol method or REST route; top-level `tools/call` of an unknown name; a bad CLI argument")
            case .invalidConfig: return Row(jsonRPC: J.invalidParams, http: H.badRequest, exit: X.config,
                                            meaning: "the config file (or a server's entry) is invalid")
            case .internalError: return Row(jsonRPC: J.internalError, http: H.internalServerError, exit: X.software,
                                            meaning: "a bug: please report it")
            case .timeout: return Row(jsonRPC: J.timeout, http: H.gatewayTimeout, exit: X.tempFail,
                                      meaning: "an upstream call took longer than `call_tool_timeout`")
            case .upstreamFailed: return Row(jsonRPC: J.upstreamFailed, http: H.badGateway, exit: X.protocolError,
                                             meaning: "the upstream failed or exited (named, with its exit status)")
            case .unavailable: return Row(jsonRPC: J.upstreamFailed, http: H.badGateway, exit: X.unavailable,
                                          meaning: "something needed is not running or not installed (a server not ready, docker, the proxy for a CLI command that needs it)")
            case .refused: return Row(jsonRPC: J.refused, http: H.forbidden, exit: X.noPermission,
                                      meaning: "policy refusal outside a tool result (a Host, an Origin, a scope, an isolation rule)")
            case .unauthorized: return Row(jsonRPC: J.refused, http: H.unauthorized, exit: X.noPermission,
                                           meaning: "missing or wrong credential")
            case .notFound: return Row(jsonRPC: J.notFound, http: H.notFound, exit: X.noInput,
                                       meaning: "no such server, tool or token")
            case .conflict: return Row(jsonRPC: J.serverError, http: H.conflict, exit: X.cannotCreate,
                                       meaning: "already exists; another `serve` holds the data dir")
            case .unsupported: return Row(jsonRPC: J.serverError, http: H.notImplemented, exit: X.unavailable,
                                          meaning: "not supported here (this kernel, this build, this route without a token store)")
            case .payloadTooLarge: return Row(jsonRPC: J.serverError, http: H.contentTooLarge, exit: X.dataError,
                                              meaning: "a body over `max_request_body`")
            case .cancelled: return Row(jsonRPC: J.requestCancelled, http: H.clientClosedRequest, exit: X.interrupted,
                                        meaning: "the client cancelled the request (only an HTTP request still open gets it; over stdio a cancelled request gets no response)")
            }
        }

        /// The JSON-RPC 2.0 error code this maps to.
        public var jsonRPCCode: Int { row.jsonRPC }
        /// The HTTP status this maps to (REST API, and `/mcp` refusals before MCP).
        public var httpStatus: Int { row.http }
        /// The exit status of a CLI command that fails with this code.
        public var exitStatus: Int32 { row.exit }
    }

    public var code: Code
    public var message: String
    /// The lower-level error behind this one, when there is one.
    public var cause: (any Error)?
    /// The cause rendered for people and logs: the cause's description, or text the other side
    /// wrote (a process's stderr tail, an HTTP body) when there is no error value.
    public var detail: String?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
        self.detail = cause.map { "\($0)" }
    }

    /// An error whose cause is text only (output of a process, a body), or whose message already
    /// names its cause (`detail: nil, cause: e`).
    public init(_ code: Code, _ message: String, detail: String?, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
        self.detail = detail
    }

    public var description: String {
        if let detail { return "\(message) (\(detail))" }
        return message
    }

    public static func == (a: ProxyError, b: ProxyError) -> Bool {
        a.code == b.code && a.message == b.message && a.detail == b.detail
    }

    /// The JSON-RPC error object `{"code":…,"message":…}` this error is written as.
    public var jsonRPCErrorObject: JSONRPCErrorObject {
        JSONRPCErrorObject(code: code.jsonRPCCode, message: description)
    }
}

/// JSON-RPC 2.0 error codes the proxy writes: the spec's reserved ones and the proxy's own in the
/// server-error range the spec leaves to implementations (plus LSP's "request cancelled").
public enum JSONRPCErrorCode {
    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let methodNotFound = -32601
    public static let invalidParams = -32602
    public static let internalError = -32603
    public static let serverError = -32000
    public static let timeout = -32001
    public static let upstreamFailed = -32002
    public static let refused = -32003
    public static let notFound = -32004
    /// MCP 2026-07-28: an HTTP header (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`)
    /// disagrees with the request body.
    public static let headerMismatch = -32020
    /// MCP 2026-07-28: the request's protocol version is not spoken here (`data.supported` lists
    /// those that are).
    public static let unsupportedProtocolVersion = -32022
    /// "Request cancelled", as LSP numbers it.
    public static let requestCancelled = -32800
}

/// HTTP statuses of the table (ProxyCore does not depend on an HTTP library).
public enum HTTPStatusCode {
    public static let badRequest = 400
    public static let unauthorized = 401
    public static let forbidden = 403
    public static let notFound = 404
    public static let notAcceptable = 406
    public static let conflict = 409
    public static let contentTooLarge = 413
    /// nginx's "client closed request".
    public static let clientClosedRequest = 499
    public static let internalServerError = 500
    public static let notImplemented = 501
    public static let badGateway = 502
    public static let gatewayTimeout = 504
}

/// Exit statuses of `mcpproxy` commands: 0 success, 1 a check that ran and found problems
/// (`doctor` with a refused plan, `audit` with high findings, `scan` with hard findings), and
/// for errors the BSD `sysexits.h` values (64 is also what ArgumentParser uses for a usage error).
public enum ExitStatus {
    public static let success: Int32 = 0
    public static let findings: Int32 = 1
    public static let usage: Int32 = 64
    public static let dataError: Int32 = 65
    public static let noInput: Int32 = 66
    public static let unavailable: Int32 = 69
    public static let software: Int32 = 70
    public static let cannotCreate: Int32 = 73
    public static let tempFail: Int32 = 75
    public static let protocolError: Int32 = 76
    public static let noPermission: Int32 = 77
    public static let config: Int32 = 78
    /// 128 + SIGINT, the shell's status for an interrupted command.
    public static let interrupted: Int32 = 130
}

/// A JSON-RPC error object as received from an upstream (or a client): its code and message
/// parsed for the proxy's own decisions, and its exact bytes, which are what is forwarded.
public struct JSONRPCErrorObject: Error, Sendable, Equatable, CustomStringConvertible {
    /// nil when the sender's object has no integer `code` (it is still forwarded as it was).
    public let code: Int?
    public let message: String
    /// The object's exact text as received; nil for one the proxy makes.
    public let raw: [UInt8]?

    public init(code: Int?, message: String, raw: [UInt8]? = nil) {
        self.code = code
        self.message = message
        self.raw = raw
    }

    /// Reads an error object's code and message as far as it can; the bytes are kept whatever
    /// they hold, so a malformed object is still forwarded unchanged.
    public init(raw: [UInt8]) {
        let v = try? JSONValue.parse(Data(raw))
        self.init(code: v?["code"]?.intValue, message: v?["message"]?.stringValue ?? "error", raw: raw)
    }

    /// The bytes to write: the received ones when there are some, else `{"code":…,"message":…}`.
    public var bytes: [UInt8] {
        if let raw { return raw }
        var s = #"{"code":\#(code ?? JSONRPCErrorCode.internalError),"message":"#
        JSONValue.writeString(message, into: &s)
        s += "}"
        return Array(s.utf8)
    }

    public var isMethodNotFound: Bool { code == JSONRPCErrorCode.methodNotFound }

    /// "message (code N)", for log lines and wrapping errors.
    public var description: String { "\(message) (code \(code.map(String.init) ?? "?"))" }
}

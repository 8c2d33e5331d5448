import Foundation

/// The one error type of the project. Its `code` is stable and maps to a JSON-RPC error code and
/// an HTTP status; its `message` says what was wrong, where, and what to do.
public struct ProxyError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A stable error category.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case invalidArgument, invalidConfig, notFound, timeout, unsupported, unavailable
            case upstreamFailed, refused, parseError, invalidRequest, methodNotFound
            case unauthorized, payloadTooLarge, internalError, conflict, unknownSession, cancelled
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        public static let invalidArgument = Code(.invalidArgument)
        public static let invalidConfig = Code(.invalidConfig)
        public static let notFound = Code(.notFound)
        public static let timeout = Code(.timeout)
        public static let unsupported = Code(.unsupported)
        public static let unavailable = Code(.unavailable)
        public static let upstreamFailed = Code(.upstreamFailed)
        /// Refused by policy (quarantine, isolation safety rule, intent mismatch).
        public static let refused = Code(.refused)
        public static let parseError = Code(.parseError)
        public static let invalidRequest = Code(.invalidRequest)
        public static let methodNotFound = Code(.methodNotFound)
        public static let unauthorized = Code(.unauthorized)
        public static let payloadTooLarge = Code(.payloadTooLarge)
        public static let internalError = Code(.internalError)
        public static let conflict = Code(.conflict)
        /// An `Mcp-Session-Id` that does not exist, expired, or belongs to another identity.
        public static let unknownSession = Code(.unknownSession)
        /// The client cancelled the request (`notifications/cancelled`).
        public static let cancelled = Code(.cancelled)

        public var description: String { value.rawValue }

        /// The JSON-RPC 2.0 error code this maps to.
        public var jsonRPCCode: Int {
            switch value {
            case .parseError: return -32700
            case .invalidRequest, .unknownSession: return -32600
            case .methodNotFound: return -32601
            case .invalidArgument, .invalidConfig: return -32602
            case .internalError: return -32603
            case .timeout: return -32001
            case .upstreamFailed, .unavailable: return -32002
            case .refused, .unauthorized: return -32003
            case .notFound: return -32004
            case .unsupported, .payloadTooLarge, .conflict: return -32000
            case .cancelled: return -32800  // "request cancelled", as LSP numbers it
            }
        }

        /// The HTTP status this maps to in the REST API.
        public var httpStatus: Int {
            switch value {
            case .invalidArgument, .invalidConfig, .parseError, .invalidRequest: return 400
            case .unauthorized: return 401
            case .refused: return 403
            case .notFound, .methodNotFound, .unknownSession: return 404
            case .conflict: return 409
            case .payloadTooLarge: return 413
            case .timeout: return 504
            case .upstreamFailed, .unavailable: return 502
            case .unsupported: return 501
            case .internalError: return 500
            case .cancelled: return 499  // "client closed request"
            }
        }
    }

    public var code: Code
    public var message: String
    /// A lower-level description of the cause, when there is one.
    public var cause: String?

    public init(_ code: Code, _ message: String, cause: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message) (\(cause))" }
        return message
    }
}

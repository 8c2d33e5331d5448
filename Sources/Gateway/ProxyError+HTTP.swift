import HTTPTypes
import Hummingbird
import NIOCore
import ProxyCore

/// `ProxyError` renders itself over HTTP with the status of its code's row in the table
/// (`ProxyError.Code.row`): thrown from a Hummingbird route it answers as the REST API does.
extension ProxyError: HTTPResponseError {
    public var status: HTTPResponse.Status { HTTPResponse.Status(code: code.httpStatus) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        restResponse()
    }

    /// The REST API's form: `{"error":{"code","message"}}`.
    public func restResponse(headers: HTTPFields = [:]) -> Response {
        let body = JSONValue.object(["error": ["code": .string(code.rawValue), "message": .string(description)]])
        return HTTPGateway.json(status, body.serialized(), headers: headers)
    }

    /// The `/mcp` endpoint's form for a request refused before MCP handles it (credential, Host,
    /// Origin, session, size): a JSON-RPC error response with `"id":null`.
    public func jsonRPCResponse(headers: HTTPFields = [:]) -> Response {
        HTTPGateway.json(status, JSONRPC.error(id: nil, self), headers: headers)
    }
}

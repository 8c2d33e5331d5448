import Crypto
import Foundation
import ProxyCore

/// Fingerprints of tool definitions, the basis of tool pinning.
///
/// The fingerprint covers what changes a tool's meaning to a model: name, description, input and
/// output schema. Annotations (hints such as `readOnlyHint`) are hashed separately so a change to
/// them can be shown as such; both are pinned at approval and either changing holds the tool.
public enum ToolFingerprint {
    /// Hex SHA-256 of the canonical JSON (sorted keys, no insignificant white space) of
    /// `{name, description, inputSchema, outputSchema}`.
    public static func of(_ tool: ToolDefinition) -> String {
        sha256Hex(canonical(tool).serialized())
    }

    /// Hex SHA-256 of the canonical JSON of the tool's annotations (`null` when absent).
    public static func annotations(_ tool: ToolDefinition) -> String {
        sha256Hex((tool.annotations ?? .null).serialized())
    }

    /// The JSON object the fingerprint is computed over.
    public static func canonical(_ tool: ToolDefinition) -> JSONValue {
        .object([
            "name": .string(tool.name),
            "description": .string(tool.description),
            "inputSchema": tool.inputSchema,
            "outputSchema": tool.outputSchema ?? .null,
        ])
    }

    /// The definition as stored for diffs: the canonical fields plus annotations.
    public static func storedDefinition(_ tool: ToolDefinition) -> JSONValue {
        var o = canonical(tool).objectValue ?? [:]
        o["annotations"] = tool.annotations ?? .null
        return .object(o)
    }

    /// Hex SHA-256 of a string's UTF-8 bytes.
    public static func sha256Hex(_ s: String) -> String { sha256Hex(Data(s.utf8)) }

    /// Hex SHA-256 of bytes.
    public static func sha256Hex(_ data: Data) -> String {
        // A table lookup, not String(format:): this runs for every logged call.
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in SHA256.hash(data: data) {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// What makes a server the server that was approved: how it is started or reached.
public enum ServerIdentity {
    /// Hex SHA-256 of the canonical JSON of `{command, args, url, protocol, image}`. Environment
    /// values (tokens rotate) and the working directory are left out.
    public static func of(_ server: ServerConfig) -> String {
        let o: JSONValue = .object([
            "command": server.command.map { .string($0) } ?? .null,
            "args": .array(server.args.map { .string($0) }),
            "url": server.url.map { .string($0) } ?? .null,
            "protocol": .string(server.effectiveProtocol.rawValue),
            "image": server.isolation?.image.map { .string($0) } ?? .null,
        ])
        return ToolFingerprint.sha256Hex(o.serialized())
    }
}

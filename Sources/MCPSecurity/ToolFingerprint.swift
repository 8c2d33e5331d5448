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

    /// What pinning and the verdict need of one tool, computed once per evaluation (each was
    /// computed two or three times per tool before: at pinning, at recording what was seen, and
    /// in the verdict).
    public struct Prints: Sendable, Equatable {
        /// `of(tool)`.
        public let fingerprint: String
        /// `annotations(tool)`.
        public let annotations: String
        /// `storedDefinition(tool).serialized()`.
        public let stored: String
    }

    public static func prints(_ tool: ToolDefinition) -> Prints {
        let canon = canonical(tool)
        var stored = canon.objectValue ?? [:]
        stored["annotations"] = tool.annotations ?? .null
        return Prints(fingerprint: sha256Hex(canon.serialized()), annotations: annotations(tool),
                      stored: JSONValue.object(stored).serialized())
    }

    /// `prints` of every tool, in order; long lists are split over the cores.
    public static func prints(_ tools: [ToolDefinition]) -> [Prints] {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        guard tools.count >= 256, cores > 1 else { return tools.map(prints) }
        let chunks = min(cores * 4, tools.count / 64)
        let size = (tools.count + chunks - 1) / chunks
        var parts = [[Prints]](repeating: [], count: chunks)
        parts.withUnsafeMutableBufferPointer { out in
            let out = UnsafeSendableBuffer(out)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                out.buffer[c] = tools[min(tools.count, c * size)..<min(tools.count, (c + 1) * size)].map(prints)
            }
        }
        return parts.flatMap { $0 }
    }

    /// Hex SHA-256 of a string's UTF-8 bytes.
    public static func sha256Hex(_ s: String) -> String {
        var s = s
        // Hash the string's own UTF-8 storage (no copy into a Data first).
        return s.withUTF8 { hex(SHA256.hash(data: UnsafeRawBufferPointer($0))) }
    }

    /// Hex SHA-256 of bytes.
    public static func sha256Hex(_ data: Data) -> String { hex(SHA256.hash(data: data)) }

    /// A digest in lower-case hex. A table lookup written into the string's own storage, not
    /// String(format:): this runs for every logged call and every tool of a catalogue.
    static func hex(_ digest: SHA256.Digest) -> String {
        String(unsafeUninitializedCapacity: 64) { out in
            var i = 0
            for b in digest {
                out[i] = hexDigits[Int(b >> 4)]
                out[i + 1] = hexDigits[Int(b & 0x0F)]
                i += 2
            }
            return 64
        }
    }
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
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

import Foundation
import Hummingbird
import Logging
import MCPSecurity
import NIOCore
import ProxyCore

extension RESTAPI {
    /// `GET /secrets` (names, never values), `PUT /secrets/{name}` with `{"value", "workspace"?}`,
    /// `DELETE /secrets/{name}[?workspace=W]`: admin only, like all of REST. No answer ever holds
    /// a value. Servers using a changed secret restart (`SecretWatch`).
    func registerSecrets(on api: RouterGroup<BasicRequestContext>) {
        api.get("/secrets") { _, _ in
            await Self.answer { ["secrets": .array(try self.requireSecretStore().list().map(\.listing))] }
        }
        api.put("/secrets/:name") { request, ctx in
            guard let name = ctx.parameters.get("name") else { return Self.error(ProxyError(.invalidArgument, "missing secret name")) }
            let body: ByteBuffer
            do { body = try await request.body.collect(upTo: SecretStore.maxValueBytes + 4096) } catch {
                return Self.error(ProxyError(.payloadTooLarge, "the request body is too large or unreadable (a secret holds at most \(SecretStore.maxValueBytes) bytes)"))
            }
            guard let v = try? JSONValue.parse(Data(body.readableBytesView)), let value = v["value"]?.stringValue else {
                return Self.error(ProxyError(.invalidArgument, "expected a JSON object {\"value\": \"...\", \"workspace\"?: \"...\"}"))
            }
            let scope = v["workspace"]?.stringValue ?? SecretStore.globalScope
            return await Self.answer {
                let replaced = try self.requireSecretStore().set(name: name, scope: scope, value: value)
                return ["ok": true, "secret": .string(name), "scope": .string(scope), "operation": .string(replaced ? "replace" : "create")]
            }
        }
        api.delete("/secrets/:name") { request, ctx in
            guard let name = ctx.parameters.get("name") else { return Self.error(ProxyError(.invalidArgument, "missing secret name")) }
            let scope = request.uri.queryParameters.get("workspace").map { String($0) } ?? SecretStore.globalScope
            return await Self.answer {
                guard try self.requireSecretStore().remove(name: name, scope: scope) else {
                    throw ProxyError(.notFound, "no secret named \"\(name)\" (\(scope))")
                }
                return ["ok": true, "secret": .string(name), "scope": .string(scope), "operation": "remove"]
            }
        }
    }

    func requireSecretStore() throws -> SecretStore {
        guard let store = tokenStore else { throw ProxyError(.unsupported, "no state database: secrets are unavailable") }
        return SecretStore(store: store)
    }
}

extension ServerManager {
    /// Restarts the enabled servers whose config references one of `names`; returns their names.
    public func restartServers(usingSecrets names: Set<String>) async -> [String] {
        var restarted: [String] = []
        for s in allServers() {
            let c = await s.config
            guard c.enabled, SecretResolver.references(of: c).contains(where: { names.contains($0.name) }) else { continue }
            try? await restart(s.name)
            restarted.append(s.name)
        }
        return restarted
    }
}

/// Restarts servers whose secrets changed, whoever changed them (`mcpproxy secret set` in another
/// process, or REST through this process's own connection, which `PRAGMA data_version` does not
/// see): the secrets' update times are read once a second (one small SELECT).
public enum SecretWatch {
    public static func run(store: SecretStore, manager: ServerManager, logger: Logger, interval: Double = 1) async {
        var seen = (try? store.versions()) ?? [:]
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
            guard let now = try? store.versions(), now != seen else { continue }
            // Global-scope secrets are the ones references name today.
            var changed = Set<String>()
            for key in Set(now.keys).union(seen.keys) where now[key] != seen[key] && key.hasPrefix(SecretStore.globalScope + "/") {
                changed.insert(String(key.dropFirst(SecretStore.globalScope.count + 1)))
            }
            seen = now
            guard !changed.isEmpty else { continue }
            let restarted = await manager.restartServers(usingSecrets: changed)
            if !restarted.isEmpty {
                logger.info("secrets changed (\(changed.sorted().joined(separator: ", "))): restarting \(restarted.joined(separator: ", "))")
            }
        }
    }
}

import Foundation
import Hummingbird
import Isolation
import Logging
import MCPSecurity
import NIOCore
import ProxyCore
import Upstream

/// Creating, changing and deleting workspaces (docs/workspaces.md): the one implementation
/// behind `mcpproxy workspace ...` and `/api/v1/workspaces`. Definitions live in the config
/// file's `workspaces`; a running proxy picks the change up with its config reload.
public enum WorkspaceAdmin {
    /// Adds a workspace to the config file. Refused when one of that name exists.
    public static func create(configPath: String, _ ws: WorkspaceConfig) throws {
        guard WorkspaceConfig.isValidName(ws.name) else {
            throw ProxyError(.invalidArgument, "invalid workspace name \"\(ws.name)\": use lower-case letters, digits, '-' and '_', at most 32 characters, starting with a letter or digit")
        }
        try ConfigFile.updateWorkspaces(path: configPath) { all in
            if all[ws.name] != nil { throw ProxyError(.conflict, "a workspace named \"\(ws.name)\" already exists") }
            all[ws.name] = entry(ws)
        }
    }

    /// Adds a member (`NAME`/`token:NAME` or `jwt:SUBJECT`) to a workspace.
    public static func addMember(configPath: String, workspace: String, member: String) throws {
        let m = WorkspaceConfig.canonicalMember(member)
        try ConfigFile.updateWorkspaces(path: configPath) { all in
            guard var e = all[workspace] as? [String: Any] else { throw ProxyError(.notFound, "no workspace named \"\(workspace)\"") }
            var members = (e["members"] as? [String]) ?? []
            if !members.map(WorkspaceConfig.canonicalMember).contains(m) { members.append(m) }
            e["members"] = members
            all[workspace] = e
        }
    }

    static func entry(_ ws: WorkspaceConfig) -> [String: Any] {
        var e: [String: Any] = ["members": ws.members.map(WorkspaceConfig.canonicalMember)]
        if let s = ws.servers { e["servers"] = s }
        if let i = ws.intent { e["intent"] = i }
        return e
    }

    /// Deletes a workspace: its entry in the config file, then everything it owns: instances
    /// (stopped by `stopInstances` when a proxy runs), containers, volumes and networks (by
    /// label, in every container engine found), its directory of sandbox homes and volume data,
    /// and its secrets. Returns what was removed, one "kind name" line each.
    public static func delete(configPath: String, dataDir: String, workspace: String, store: SecurityStore?,
                              environment: [String: String] = ProcessSettings.current.environment,
                              stopInstances: (() async -> [String])? = nil) async throws -> [String] {
        guard WorkspaceConfig.isValidName(workspace) else { throw ProxyError(.invalidArgument, "invalid workspace name \"\(workspace)\"") }
        var existed = false
        try ConfigFile.updateWorkspaces(path: configPath) { all in
            existed = all.removeValue(forKey: workspace) != nil
        }
        var removed: [String] = existed ? ["workspace \(workspace) (config entry)"] : []
        if let stopInstances { removed += await stopInstances().map { "instance \($0)" } }
        for engine in ContainerEngines.all where engine.executable() != nil {
            removed += await ContainerLifecycle.removeWorkspace(workspace, engine: engine, environment: environment)
        }
        let dir = WorkspaceNames.directory(root: WorkspaceNames.root(dataDir: dataDir, isRoot: geteuid() == 0), workspace: workspace)
        if FileManager.default.fileExists(atPath: dir) {
            try FileManager.default.removeItem(atPath: dir)
            removed.append("directory \(dir)")
        }
        if let store {
            let secrets = SecretStore(store: store)
            for s in (try? secrets.list()) ?? [] where s.scope == workspace {
                if (try? secrets.remove(name: s.name, scope: workspace)) == true { removed.append("secret \(s.name)") }
            }
        }
        if !existed && removed.isEmpty { throw ProxyError(.notFound, "no workspace named \"\(workspace)\" and nothing of it left") }
        return removed
    }

    /// A workspace as REST and `workspace list --json` show it.
    public static func json(_ ws: WorkspaceConfig, instances: [JSONValue] = []) -> JSONValue {
        [
            "name": .string(ws.name),
            "members": .array(ws.members.map { .string(WorkspaceConfig.canonicalMember($0)) }),
            "servers": ws.servers.map { .array($0.map { .string($0) }) } ?? .null,
            "intent": ws.intent.map { .string($0) } ?? .null,
            "instances": .array(instances),
        ]
    }
}

extension RESTAPI {
    /// `GET/POST /workspaces`, `POST /workspaces/{name}/members`, `DELETE /workspaces/{name}`
    /// (admin only, like all of REST).
    func registerWorkspaces(on api: RouterGroup<BasicRequestContext>) {
        api.get("/workspaces") { _, _ in
            await Self.answer {
                let config = await self.manager.currentConfig
                let running = await self.manager.instances.all()
                var list: [JSONValue] = []
                for ws in config.workspaces {
                    var inst: [JSONValue] = []
                    for (key, server) in running.sorted(by: { $0.key.description < $1.key.description }) where key.workspace == ws.name {
                        let snap = await server.snapshot()
                        inst.append(["server": .string(key.server), "state": .string(snap.state.rawValue),
                                     "pid": snap.pid.map { .number(Double($0)) } ?? .null,
                                     "container_id": snap.containerID.map { .string($0) } ?? .null])
                    }
                    list.append(WorkspaceAdmin.json(ws, instances: inst))
                }
                return ["workspaces": .array(list)]
            }
        }
        api.post("/workspaces") { request, _ in
            guard let v = await Self.jsonBody(request) else {
                return Self.error(ProxyError(.invalidArgument, "expected a JSON object {\"name\", \"members\"?, \"servers\"?, \"intent\"?}"))
            }
            return await Self.answer {
                guard let name = v["name"]?.stringValue else { throw ProxyError(.invalidArgument, "missing \"name\"") }
                let ws = WorkspaceConfig(name: name, members: v["members"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                                         servers: v["servers"]?.arrayValue?.compactMap(\.stringValue), intent: v["intent"]?.stringValue)
                try WorkspaceAdmin.create(configPath: self.manager.configPath, ws)
                try await self.manager.reloadFromFile()
                return ["ok": true, "workspace": .string(name), "operation": "create"]
            }
        }
        api.post("/workspaces/:name/members") { request, ctx in
            guard let name = ctx.parameters.get("name") else { return Self.error(ProxyError(.invalidArgument, "missing workspace name")) }
            guard let v = await Self.jsonBody(request), let member = v["member"]?.stringValue else {
                return Self.error(ProxyError(.invalidArgument, "expected a JSON object {\"member\": \"token:NAME\" | \"jwt:SUBJECT\"}"))
            }
            return await Self.answer {
                try WorkspaceAdmin.addMember(configPath: self.manager.configPath, workspace: name, member: member)
                try await self.manager.reloadFromFile()
                return ["ok": true, "workspace": .string(name), "member": .string(WorkspaceConfig.canonicalMember(member))]
            }
        }
        api.delete("/workspaces/:name") { _, ctx in
            guard let name = ctx.parameters.get("name") else { return Self.error(ProxyError(.invalidArgument, "missing workspace name")) }
            return await Self.answer {
                let removed = try await WorkspaceAdmin.delete(
                    configPath: self.manager.configPath, dataDir: self.dataDir, workspace: name, store: self.tokenStore,
                    stopInstances: { await self.manager.stopInstances(workspace: name) })
                try await self.manager.reloadFromFile()
                return ["ok": true, "workspace": .string(name), "operation": "delete", "removed": .array(removed.map { .string($0) })]
            }
        }
    }

    static func jsonBody(_ request: Request) async -> JSONValue? {
        guard let body = try? await request.body.collect(upTo: 64 << 10) else { return nil }
        return try? JSONValue.parse(Data(body.readableBytesView))
    }
}

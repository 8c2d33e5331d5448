import Foundation

/// Reads and rewrites the config file for changes the proxy makes itself (servers added,
/// removed, enabled, approved). The change is spliced into the text (`ConfigSplice`) so
/// comments and formatting survive; when that is not possible the JSON tree is rewritten
/// (unknown keys survive, comments do not). Both `mcpServers` forms are kept as the user wrote
/// them; the write is atomic (temp file + rename) and keeps the file's permissions.
public enum ConfigFile {
    /// Applies `edit` to the server entry named `name` (creating it when `create` is set), or
    /// removes it when `edit` returns nil. Validates the result before writing.
    public static func updateServer(path: String, name: String, create: Bool,
                                    edit: ([String: Any]?) throws -> [String: Any]?) throws {
        let data = FileManager.default.contents(atPath: path) ?? Data("{}".utf8)
        guard var root = try JSONSerialization.jsonObject(with: Data(JSONC.strip([UInt8](data)))) as? [String: Any] else {
            throw ProxyError(.invalidConfig, "\(path): the config is not a JSON object")
        }
        let servers = root["mcpServers"]
        var spliceEntry: [String: Any]?? = nil   // .some(nil): remove; .some(x): set to x
        if var dict = servers as? [String: Any] {
            var entry = dict[name] as? [String: Any]
            if entry == nil && !create { throw ProxyError(.notFound, "no server named \"\(name)\" in \(path)") }
            if entry != nil && create { throw ProxyError(.conflict, "a server named \"\(name)\" already exists in \(path)") }
            entry?.removeValue(forKey: "name")
            if var new = try edit(entry) { new.removeValue(forKey: "name"); dict[name] = new; spliceEntry = .some(new) } else { dict.removeValue(forKey: name); spliceEntry = .some(nil) }
            root["mcpServers"] = dict
        } else {
            var list = servers as? [Any] ?? []
            let index = list.firstIndex { ($0 as? [String: Any])?["name"] as? String == name }
            if index == nil && !create { throw ProxyError(.notFound, "no server named \"\(name)\" in \(path)") }
            if index != nil && create { throw ProxyError(.conflict, "a server named \"\(name)\" already exists in \(path)") }
            let old = index.map { list[$0] as? [String: Any] } ?? nil
            if var new = try edit(old) {
                new["name"] = name
                if let index { list[index] = new } else { list.append(new) }
                spliceEntry = .some(new)
            } else if let index {
                list.remove(at: index)
                spliceEntry = .some(nil)
            }
            root["mcpServers"] = list
        }
        // In place when the spliced text means exactly the edited tree; else a full rewrite.
        if servers != nil, let entry = spliceEntry, let spliced = ConfigSplice.apply(text: [UInt8](data), name: name, new: entry),
           let check = try? JSONSerialization.jsonObject(with: Data(JSONC.strip(spliced))) as? [String: Any],
           ConfigSplice.same(check, root) {
            _ = try ConfigLoader.parse(data: Data(spliced), file: path)  // never write an invalid config
            try writeAtomically(path: path, data: Data(spliced))
            return
        }
        let out = try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        _ = try ConfigLoader.parse(data: out, file: path)  // never write an invalid config
        try writeAtomically(path: path, data: out + Data("\n".utf8))
    }

    /// Applies `edit` to the `workspaces` object (name → entry) and writes the file. The JSON
    /// tree is rewritten (comments do not survive this edit; unknown keys do). Validates first.
    public static func updateWorkspaces(path: String, edit: (inout [String: Any]) throws -> Void) throws {
        let data = FileManager.default.contents(atPath: path) ?? Data("{}".utf8)
        guard var root = try JSONSerialization.jsonObject(with: Data(JSONC.strip([UInt8](data)))) as? [String: Any] else {
            throw ProxyError(.invalidConfig, "\(path): the config is not a JSON object")
        }
        var ws = root["workspaces"] as? [String: Any] ?? [:]
        try edit(&ws)
        if ws.isEmpty { root.removeValue(forKey: "workspaces") } else { root["workspaces"] = ws }
        let out = try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        let loaded = try ConfigLoader.parse(data: out, file: path)  // never write an invalid config
        _ = loaded
        try writeAtomically(path: path, data: out + Data("\n".utf8))
    }

    /// Writes `data` to `path` via a temp file and rename, keeping the mode of an existing file.
    public static func writeAtomically(path: String, data: Data) throws {
        let fm = FileManager.default
        let mode = (try? fm.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? 0o600
        let dir = (path as NSString).deletingLastPathComponent
        try fm.createDirectory(atPath: dir.isEmpty ? "." : dir, withIntermediateDirectories: true)
        let tmp = "\(path).tmp-\(getpid())"
        guard fm.createFile(atPath: tmp, contents: data, attributes: [.posixPermissions: mode]) else {
            throw ProxyError(.internalError, "cannot write \(tmp)")
        }
        if rename(tmp, path) != 0 {
            let e = String(cString: strerror(errno))
            try? fm.removeItem(atPath: tmp)
            throw ProxyError(.internalError, "cannot replace \(path): \(e)")
        }
    }

    /// A server config as the JSON object it is written as.
    public static func json(for s: ServerConfig) -> [String: Any] {
        var o: [String: Any] = ["name": s.name, "enabled": s.enabled]
        if let c = s.command { o["command"] = c }
        if !s.args.isEmpty { o["args"] = s.args }
        if !s.env.isEmpty { o["env"] = s.env }
        if let u = s.url { o["url"] = u }
        if !s.headers.isEmpty { o["headers"] = s.headers }
        if s.protocolKind != .auto { o["protocol"] = s.protocolKind.rawValue }
        if let w = s.workingDir { o["working_dir"] = w }
        if let q = s.quarantined { o["quarantined"] = q }
        if let t = s.startupTimeout { o["timeout"] = "\(t)s" }
        if s.instance != .shared { o["instance"] = s.instance.rawValue }
        if let t = s.idleTimeout { o["idle_timeout"] = "\(t)s" }
        if !s.clientRequests.isEmpty { o["allow_client_requests"] = s.clientRequests.map(\.rawValue).sorted() }
        if let e = s.egress { o["egress"] = e.map(\.description) }
        if let i = s.isolation {
            var iso: [String: Any] = [:]
            if let m = i.mode { iso["mode"] = m.rawValue }
            if let e = i.enabled { iso["enabled"] = e }
            if let v = i.image { iso["image"] = v }
            if let v = i.memoryLimit { iso["memory_limit"] = v }
            if let v = i.cpuLimit { iso["cpu_limit"] = v }
            if let v = i.networkMode { iso["network_mode"] = v }
            if let v = i.workingDir { iso["working_dir"] = v }
            if let v = i.extraArgs { iso["extra_args"] = v }
            if let v = i.volumes { iso["volumes"] = v }
            if let v = i.user { iso["user"] = v }
            if let v = i.pidsLimit { iso["pids_limit"] = v }
            if !i.allow.isEmpty { iso["allow"] = i.allow }
            if let v = i.readPaths { iso["read_paths"] = v }
            if let v = i.writePaths { iso["write_paths"] = v }
            if let v = i.allowTCPConnect { iso["allow_tcp_connect"] = v }
            o["isolation"] = iso
        }
        return o
    }

    /// Identity of the file's current contents, for change polling: (mtime ns, size, inode).
    public static func stamp(path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return "\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)-\(st.st_size)-\(st.st_ino)"
    }
}

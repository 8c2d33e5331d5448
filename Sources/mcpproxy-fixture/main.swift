// A fixture MCP server over stdio for the project's tests and benchmarks.
// Foundation only, so it also compiles with `swiftc -static-executable` for FROM-scratch images.
//
// Flags:
//   --name NAME           serverInfo.name (default "fixture")
//   --tools-file PATH     JSON array of extra tool definitions; re-read on SIGHUP or when the
//                         file changes (polled every 200 ms), announced by
//                         notifications/tools/list_changed (rug-pull tests)
//   --startup-delay-ms N  sleep before reading stdin
//   --page-size N         paginate tools/list with this many tools per page
//   --stderr-noise        write a line to stderr per request
//   --fault-tools         also offer the fault tools below
//
// Fault tools (reliability tests, with --fault-tools): `close_stdout` closes stdout and keeps running (a wedged
// server), `overlong` writes one line of the given size, `block` blocks the request loop (a
// busy single-threaded server: pings go unanswered), `flood` sends N tools/list_changed, `hog`
// allocates and touches N MiB and keeps them, `spin` starts a thread that burns CPU (the runtime
// monitor's tests).
// `sleep` calls run on a thread each and reply with preformatted bytes, so any number of them
// can overlap (no Foundation work off the main thread).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

setvbuf(stdout, nil, _IOFBF, 1 << 16)
var name = "fixture"
var toolsFile: String? = nil
var pageSize = 0
var stderrNoise = false
var faultTools = false
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--name": name = args.next() ?? name
    case "--tools-file": toolsFile = args.next()
    case "--startup-delay-ms": usleep(UInt32(args.next().flatMap { Int($0) } ?? 0) * 1000)
    case "--page-size": pageSize = args.next().flatMap { Int($0) } ?? 0
    case "--stderr-noise": stderrNoise = true
    case "--fault-tools": faultTools = true
    default: FileHandle.standardError.write("fixture: unknown flag \(a)\n".data(using: .utf8)!)
    }
}

let outLock = NSLock()
func send(_ object: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes]) else { return }
    outLock.lock()
    data.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, stdout) }
    fputc(0x0A, stdout)
    fflush(stdout)
    outLock.unlock()
}

/// Writes preformatted bytes plus a newline under the output lock (safe from any thread).
func sendRaw(_ text: String) {
    outLock.lock()
    fputs(text, stdout)
    fputc(0x0A, stdout)
    fflush(stdout)
    outLock.unlock()
}

func schema(_ props: [String: [String: Any]], required: [String] = []) -> [String: Any] {
    ["type": "object", "properties": props, "required": required]
}

let builtinTools: [[String: Any]] = [
    ["name": "echo", "description": "Echo the given text back unchanged.",
     "inputSchema": schema(["text": ["type": "string", "description": "Text to echo"]], required: ["text"]),
     "annotations": ["readOnlyHint": true]],
    ["name": "add", "description": "Add two integers and return the sum.",
     "inputSchema": schema(["a": ["type": "integer"], "b": ["type": "integer"]], required: ["a", "b"]),
     "annotations": ["readOnlyHint": true]],
    ["name": "sleep", "description": "Wait for the given number of milliseconds, then answer.",
     "inputSchema": schema(["ms": ["type": "integer", "description": "milliseconds to wait"]]),
     "annotations": ["readOnlyHint": true]],
    ["name": "crash", "description": "Exit the server process immediately with the given exit code.",
     "inputSchema": schema(["code": ["type": "integer"]]),
     "annotations": ["destructiveHint": true]],
    ["name": "get_env", "description": "Return the value of an environment variable, or (unset).",
     "inputSchema": schema(["name": ["type": "string"]], required: ["name"]),
     "annotations": ["readOnlyHint": true]],
    ["name": "list_env", "description": "Return the names of all environment variables.",
     "inputSchema": schema([:]), "annotations": ["readOnlyHint": true]],
    ["name": "read_file", "description": "Read a file from disk and return its contents.",
     "inputSchema": schema(["path": ["type": "string"]], required: ["path"]),
     "annotations": ["readOnlyHint": true]],
    ["name": "write_file", "description": "Write text content to a file on disk.",
     "inputSchema": schema(["path": ["type": "string"], "content": ["type": "string"]], required: ["path"]),
     "annotations": ["destructiveHint": true]],
    ["name": "alloc", "description": "Allocate and touch the given number of megabytes of memory.",
     "inputSchema": schema(["mb": ["type": "integer"]], required: ["mb"]),
     "annotations": ["readOnlyHint": false]],
    ["name": "big", "description": "Return a text result of the given size in bytes.",
     "inputSchema": schema(["bytes": ["type": "integer"]], required: ["bytes"]),
     "annotations": ["readOnlyHint": true]],
    ["name": "raw_result", "description": "Return the given JSON text verbatim as the result.",
     "inputSchema": schema(["json": ["type": "string"]], required: ["json"]),
     "annotations": ["readOnlyHint": true]],
    ["name": "whoami", "description": "Return the uid, gid and pid of the server process.",
     "inputSchema": schema([:]), "annotations": ["readOnlyHint": true]],
]

let faultToolDefinitions: [[String: Any]] = [
    ["name": "close_stdout", "description": "Close standard output and keep running without answering.",
     "inputSchema": schema([:]), "annotations": ["destructiveHint": true]],
    ["name": "overlong", "description": "Write one output line of the given size in bytes.",
     "inputSchema": schema(["bytes": ["type": "integer"]], required: ["bytes"]), "annotations": ["readOnlyHint": true]],
    ["name": "block", "description": "Block the request loop for the given milliseconds, then answer.",
     "inputSchema": schema(["ms": ["type": "integer"]], required: ["ms"]), "annotations": ["readOnlyHint": true]],
    ["name": "flood", "description": "Send the given number of tools/list_changed notifications.",
     "inputSchema": schema(["count": ["type": "integer"]], required: ["count"]), "annotations": ["readOnlyHint": true]],
    ["name": "hog", "description": "Allocate and touch the given number of megabytes and keep them.",
     "inputSchema": schema(["mb": ["type": "integer"]], required: ["mb"]), "annotations": ["readOnlyHint": false]],
    ["name": "spin", "description": "Start a thread that burns CPU until the server exits.",
     "inputSchema": schema([:]), "annotations": ["readOnlyHint": false]],
]

/// Memory `hog` keeps (never freed).
var hogged: [UnsafeMutableRawPointer] = []

let toolsLock = NSLock()
var extraTools: [[String: Any]] = []
var toolsFileStamp: String = ""
func loadToolsFile() -> Bool {
    guard let path = toolsFile else { return false }
    let attrs = try? FileManager.default.attributesOfItem(atPath: path)
    let stamp = "\((attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)-\((attrs?[.size] as? Int) ?? -1)"
    toolsLock.lock(); defer { toolsLock.unlock() }
    if stamp == toolsFileStamp { return false }
    toolsFileStamp = stamp
    guard let data = FileManager.default.contents(atPath: path),
          let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { extraTools = []; extraToolsText = nil; return true }
    extraTools = list
    // The file's own text between its brackets, spliced into unpaged tools/list answers: a
    // 10,000-tool list re-serialized by JSONSerialization took this fixture ~2 s per answer,
    // which the catalogue benchmark then counted as the proxy's start-up.
    var text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    if text.hasPrefix("[") && text.hasSuffix("]") {
        // JSON strings cannot hold a raw line break, so any is white space between tokens:
        // the answer must stay on one line.
        text = String(text.dropFirst().dropLast()).trimmingCharacters(in: .whitespacesAndNewlines)
        extraToolsText = text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
    } else {
        extraToolsText = nil
    }
    return true
}
var extraToolsText: String? = nil
_ = loadToolsFile()
func allTools() -> [[String: Any]] {
    toolsLock.lock(); defer { toolsLock.unlock() }
    return builtinTools + (faultTools ? faultToolDefinitions : []) + extraTools
}

/// The unpaged tools/list answer with the tools file's text spliced in (nil without one).
func splicedToolsList(id: Any?) -> String? {
    toolsLock.lock(); defer { toolsLock.unlock() }
    guard let extra = extraToolsText else { return nil }
    let own = builtinTools + (faultTools ? faultToolDefinitions : [])
    guard let ownData = try? JSONSerialization.data(withJSONObject: own, options: [.withoutEscapingSlashes]),
          let idData = try? JSONSerialization.data(withJSONObject: [id ?? NSNull()], options: []) else { return nil }
    let ownText = String(decoding: ownData.dropFirst().dropLast(), as: UTF8.self)
    let idText = String(decoding: idData.dropFirst().dropLast(), as: UTF8.self)
    let items = [ownText, extra].filter { !$0.isEmpty }.joined(separator: ",")
    return "{\"jsonrpc\":\"2.0\",\"id\":\(idText),\"result\":{\"tools\":[\(items)]}}"
}

var initialized = false
if toolsFile != nil {
    Thread.detachNewThread {
        while true {
            usleep(200_000)
            if loadToolsFile(), initialized { send(["jsonrpc": "2.0", "method": "notifications/tools/list_changed"]) }
        }
    }
    signal(SIGHUP, SIG_IGN)
}

func text(_ s: String, isError: Bool = false) -> [String: Any] {
    ["content": [["type": "text", "text": s]], "isError": isError]
}

func callTool(_ name: String, _ a: [String: Any]) -> [String: Any] {
    switch name {
    case "echo": return text(a["text"] as? String ?? "")
    case "add": return text(String((a["a"] as? Int ?? 0) + (a["b"] as? Int ?? 0)))
    case "crash": fflush(stdout); exit(Int32(a["code"] as? Int ?? 3))
    case "get_env": return text(ProcessInfo.processInfo.environment[a["name"] as? String ?? ""] ?? "(unset)")
    case "list_env": return text(ProcessInfo.processInfo.environment.keys.sorted().joined(separator: "\n"))
    case "read_file":
        let path = a["path"] as? String ?? ""
        guard let fd = Optional(open(path, O_RDONLY)), fd >= 0 else { return text("error: \(String(cString: strerror(errno)))", isError: true) }
        defer { close(fd) }
        var data = Data(); var buf = [UInt8](repeating: 0, count: 65536)
        while true { let n = read(fd, &buf, buf.count); if n <= 0 { break }; data.append(contentsOf: buf[0..<n]) }
        return text(String(decoding: data, as: UTF8.self))
    case "write_file":
        let path = a["path"] as? String ?? ""
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { return text("error: \(String(cString: strerror(errno)))", isError: true) }
        let bytes = Array((a["content"] as? String ?? "").utf8)
        _ = write(fd, bytes, bytes.count); close(fd)
        return text("wrote \(bytes.count) bytes")
    case "alloc":
        let mb = a["mb"] as? Int ?? 1
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<mb { if let p = malloc(1 << 20) { memset(p, 1, 1 << 20); blocks.append(p) } }
        let n = blocks.count; blocks.forEach { free($0) }
        return text("allocated \(n) MB")
    case "big": return text(String(repeating: "x", count: max(0, a["bytes"] as? Int ?? 0)))
    case "whoami": return text("uid=\(getuid()) gid=\(getgid()) pid=\(getpid())")
    default:
        if allTools().contains(where: { $0["name"] as? String == name }) { return text("\(name) called") }
        return ["__error": "unknown tool \(name)"]
    }
}

/// Sleeps `ms` milliseconds, resuming after signals.
func sleepMs(_ ms: Int) {
    var req = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
    var rem = timespec()
    while nanosleep(&req, &rem) != 0 && errno == EINTR { req = rem }
}

/// The JSON text of a request id (a number or a string), made on the main thread.
func idText(_ id: Any?) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: [id ?? NSNull()], options: [])) ?? Data("[null]".utf8)
    return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
}
while let line = readLine(strippingNewline: true) {
    if line.isEmpty { continue }
    if stderrNoise { FileHandle.standardError.write("fixture \(name): request \(line.prefix(60))\n".data(using: .utf8)!) }
    guard let msg = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        send(["jsonrpc": "2.0", "id": NSNull(), "error": ["code": -32700, "message": "parse error"]]); continue
    }
    guard let method = msg["method"] as? String else { continue }  // responses to us: ignore
    let id = msg["id"]
    let params = msg["params"] as? [String: Any] ?? [:]
    switch method {
    case "initialize":
        let version = params["protocolVersion"] as? String ?? "2025-06-18"
        send(["jsonrpc": "2.0", "id": id ?? NSNull(), "result": [
            "protocolVersion": version,
            "capabilities": ["tools": ["listChanged": true]],
            "serverInfo": ["name": name, "version": "1.0.0"],
        ]])
    case "notifications/initialized": initialized = true
    case "ping": send(["jsonrpc": "2.0", "id": id ?? NSNull(), "result": [:] as [String: Any]])
    case "tools/list":
        let tools = allTools()
        if pageSize > 0 {
            let start = Int(params["cursor"] as? String ?? "0") ?? 0
            let end = min(tools.count, start + pageSize)
            var result: [String: Any] = ["tools": Array(tools[start..<end])]
            if end < tools.count { result["nextCursor"] = String(end) }
            send(["jsonrpc": "2.0", "id": id ?? NSNull(), "result": result])
        } else if let spliced = splicedToolsList(id: id) {
            sendRaw(spliced)
        } else {
            send(["jsonrpc": "2.0", "id": id ?? NSNull(), "result": ["tools": tools]])
        }
    case "tools/call":
        let toolName = params["name"] as? String ?? ""
        let arguments = params["arguments"] as? [String: Any] ?? [:]
        if toolName == "raw_result" {
            // Splice the caller's JSON text in verbatim: byte-exactness tests.
            let raw = arguments["json"] as? String ?? "{}"
            let idData = (try? JSONSerialization.data(withJSONObject: [id ?? NSNull()], options: [])) ?? Data("[null]".utf8)
            let idText = String(decoding: idData.dropFirst().dropLast(), as: UTF8.self)
            outLock.lock()
            fputs("{\"jsonrpc\":\"2.0\",\"id\":\(idText),\"result\":\(raw)}\n", stdout)
            fflush(stdout)
            outLock.unlock()
            continue
        }
        let isFault = ["close_stdout", "overlong", "block", "flood", "hog", "spin"].contains(toolName)
        switch isFault && !faultTools ? "" : toolName {
        case "sleep":
            // A thread per call: overlapping sleeps never wait for a pool, and the reply is
            // preformatted here so the thread touches no Foundation object.
            let ms = max(0, min(arguments["ms"] as? Int ?? 0, 3_600_000))
            let reply = "{\"jsonrpc\":\"2.0\",\"id\":\(idText(id)),\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"slept\"}],\"isError\":false}}"
            let t = Thread {
                sleepMs(ms)
                sendRaw(reply)
            }
            t.stackSize = 256 << 10
            t.start()
            continue
        case "close_stdout":
            outLock.lock()
            fflush(stdout)
            close(1)
            outLock.unlock()
            continue
        case "overlong":
            let n = max(0, arguments["bytes"] as? Int ?? 0)
            let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 16)
            outLock.lock()
            fflush(stdout)
            var left = n
            while left > 0 {
                let k = min(left, chunk.count)
                let w = chunk.withUnsafeBytes { write(1, $0.baseAddress, k) }
                if w <= 0 { break }
                left -= w
            }
            _ = write(1, "\n", 1)
            outLock.unlock()
            continue
        case "block":
            sleepMs(max(0, arguments["ms"] as? Int ?? 0))
            send(["jsonrpc": "2.0", "id": id ?? NSNull(), "result": text("unblocked")])
            continue
        case "hog":
            let mb = max(0, min(arguments["mb"] as? Int ?? 0, 65536))
            for _ in 0..<mb { if let p = malloc(1 << 20) { memset(p, 1, 1 << 20); hogged.append(p) } }
            send(["jsonrpc": "2.0", "id": id ?? NSNull(), "result": text("holding \(hogged.count) MB")])
            continue
        case "spin":
            let t = Thread {
                var x: UInt64 = 1
                while true { x = x &* 6364136223846793005 &+ 1; if x == 0 { fputs("", stderr) } }
            }
            t.stackSize = 256 << 10
            t.start()
            send(["jsonrpc": "2.0", "id": id ?? NSNull(), "result": text("spinning")])
            continue
        case "flood":
            let n = max(0, arguments["count"] as? Int ?? 0)
            outLock.lock()
            for _ in 0..<n { fputs("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n", stdout) }
            fflush(stdout)
            outLock.unlock()
            send(["jsonrpc": "2.0", "id": id ?? NSNull(), "result": text("sent \(n)")])
            continue
        default: break
        }
        do {
            let r = callTool(toolName, arguments)
            if let e = r["__error"] as? String {
                send(["jsonrpc": "2.0", "id": id ?? NSNull(), "error": ["code": -32602, "message": e]])
            } else {
                send(["jsonrpc": "2.0", "id": id ?? NSNull(), "result": r])
            }
        }
    default:
        if id != nil {
            send(["jsonrpc": "2.0", "id": id!, "error": ["code": -32601, "message": "method not found: \(method)"]])
        }
    }
}
exit(0)

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Gateway
import ProxyCore

/// The REST API of a running `mcpproxy serve`, found from the config's `listen` and the data
/// dir's API key (or $MCPPROXY_API_KEY). Used by CLI commands that act on live state.
struct RunningProxy {
    let base: String
    let key: String

    static func locate(paths: PathOptions) -> RunningProxy? {
        guard let config = try? ConfigLoader.load(path: paths.resolvedConfig).config else { return nil }
        var key = ProcessSettings.current.apiKey ?? ""
        if key.isEmpty, let d = FileManager.default.contents(atPath: paths.resolvedDataDir + "/api_key") {
            key = String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard !key.isEmpty else { return nil }
        // The address the running proxy published (it may listen elsewhere than the config says:
        // `serve --listen`), trusted only while that proxy holds the data dir's lock.
        let dataDir = paths.resolvedDataDir as NSString
        if FileLock.isHeld(path: dataDir.appendingPathComponent("mcpproxy.lock")),
           let published = try? String(contentsOfFile: dataDir.appendingPathComponent(ProxyRuntime.addressFile), encoding: .utf8) {
            let url = published.trimmingCharacters(in: .whitespacesAndNewlines)
            if url.hasPrefix("http://") || url.hasPrefix("https://") { return RunningProxy(base: url, key: key) }
        }
        var listen = config.listen
        if listen.hasPrefix("0.0.0.0:") { listen = "127.0.0.1:" + listen.dropFirst(8) }
        return RunningProxy(base: "http://\(listen)", key: key)
    }

    /// Performs a request; nil when nothing answers at the address.
    func call(_ method: HTTPMethod, _ path: String) async -> (status: Int, body: JSONValue)? {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "X-API-Key", value: key)
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 16 << 20)
            let value = (try? JSONValue.parse(Data(body.readableBytesView))) ?? .null
            return (Int(response.status.code), value)
        } catch {
            return nil
        }
    }

    /// The error message of a REST error body.
    static func message(_ body: JSONValue) -> String {
        body["error"]?["message"]?.stringValue ?? body.serialized()
    }
}

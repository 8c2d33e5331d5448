import Foundation
import ProxyCore

#if canImport(Glibc)
import Glibc
#endif

extension ProxyRuntime {
    /// `<data dir>/proxy.address`: the address the running proxy listens on, written once it
    /// listens (`RunningProxy` reads it while the data dir's lock is held).
    public static let addressFile = "proxy.address"

    static func publishAddress(_ url: String, dataDir: String) {
        let path = (dataDir as NSString).appendingPathComponent(addressFile)
        FileManager.default.createFile(atPath: path, contents: Data((url + "\n").utf8), attributes: [.posixPermissions: 0o600])
    }

}

import Foundation
@testable import Gateway
import Logging
import NIOConcurrencyHelpers
import ProxyCore
import Testing

/// The config's one owner: every snapshot reaches every subscriber, in order, once.
@Suite("ConfigStore")
struct ConfigStoreTests {
    static func tempConfig(_ text: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfgstore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("mcp_config.json").path
        try ConfigFile.writeAtomically(path: path, data: Data(text.utf8))
        return path
    }
    static func config(timeout: Int) -> String {
        #"{"listen": "127.0.0.1:0", "call_tool_timeout": "\#(timeout)s", "mcpServers": []}"#
    }
    /// Records what each subscriber received.
    final class Seen: Sendable {
        let box = NIOLockedValueBox<[(String, Double)]>([])
        func add(_ who: String, _ c: ProxyConfig) { box.withLockedValue { $0.append((who, c.callTimeout)) } }
        var all: [(String, Double)] { box.withLockedValue { $0 } }
    }

    @Test func reloadPublishesTheFileToEverySubscriberInOrder() async throws {
        let path = try Self.tempConfig(Self.config(timeout: 11))
        let (store, first, _) = try ConfigStore.load(path: path, logger: Logger(label: "t"))
        #expect(first.callTimeout == 11)
        let seen = Seen()
        store.subscribe { seen.add("a", $0) }
        store.subscribe { c in try? await Task.sleep(nanoseconds: 20_000_000); seen.add("b", c) }
        try ConfigFile.writeAtomically(path: path, data: Data(Self.config(timeout: 22).utf8))
        try await store.reload()
        // reload returns only once every component has the snapshot.
        #expect(seen.all.map(\.0) == ["a", "b"])
        #expect(seen.all.allSatisfy { $0.1 == 22 })
        #expect(await store.current.callTimeout == 22)
    }

    @Test func theWatcherDoesNotApplyAWriteTheStoreAlreadyPublished() async throws {
        let path = try Self.tempConfig(Self.config(timeout: 11))
        let (store, _, _) = try ConfigStore.load(path: path, logger: Logger(label: "t"))
        let seen = Seen()
        store.subscribe { seen.add("a", $0) }
        await store.reloadIfChanged()
        #expect(seen.all.isEmpty)  // unchanged file: nothing published
        try ConfigFile.writeAtomically(path: path, data: Data(Self.config(timeout: 33).utf8))
        try await store.reload()  // the gateway's own write, published at once
        await store.reloadIfChanged()  // the watcher's next tick
        #expect(seen.all.map(\.1) == [33])
        // An edit from outside is picked up by the watcher.
        try await Task.sleep(nanoseconds: 20_000_000)
        try ConfigFile.writeAtomically(path: path, data: Data(Self.config(timeout: 44).utf8))
        await store.reloadIfChanged()
        #expect(seen.all.map(\.1) == [33, 44])
    }

    @Test func anInvalidFileKeepsTheRunningConfig() async throws {
        let path = try Self.tempConfig(Self.config(timeout: 11))
        let (store, _, _) = try ConfigStore.load(path: path, logger: Logger(label: "t"))
        let seen = Seen()
        store.subscribe { seen.add("a", $0) }
        try ConfigFile.writeAtomically(path: path, data: Data("{ not json".utf8))
        await #expect(throws: ProxyError.self) { try await store.reload() }
        await store.reloadIfChanged()
        await store.reloadIfChanged()
        #expect(seen.all.isEmpty)
        #expect(await store.current.callTimeout == 11)
    }

    @Test func concurrentReloadsEndOnTheNewestFile() async throws {
        let path = try Self.tempConfig(Self.config(timeout: 1))
        let (store, _, _) = try ConfigStore.load(path: path, logger: Logger(label: "t"))
        let seen = Seen()
        store.subscribe { c in try? await Task.sleep(nanoseconds: 5_000_000); seen.add("a", c) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 2...6 {
                try ConfigFile.writeAtomically(path: path, data: Data(Self.config(timeout: t).utf8))
                group.addTask { try await store.reload() }
            }
            try await group.waitForAll()
        }
        // Every publication was delivered whole and in order; the last one is the file's.
        #expect(seen.all.count == 5)
        #expect(seen.all.last?.1 == 6)
        #expect(await store.current.callTimeout == 6)
    }
}

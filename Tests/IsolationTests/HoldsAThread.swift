import Testing

/// For suites whose tests block the thread they run on (a synchronous MCP client over pipes,
/// `Process.waitUntilExit`, `docker` runs): at most one such test runs at a time.
///
/// Swift Testing runs every test on the cooperative pool, which has one thread per core (two on
/// the CI machine). Two blocking tests at once took both threads, and every async test of the
/// whole run (servers under test, the egress proxy) waited for them: pure tests were seen taking
/// 27 s, and a test with a 10 s read timeout failed. Tests waiting for the gate are suspended,
/// not blocked, so the other thread stays free for everything else.
struct HoldsAThread: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    /// Each test case takes the gate, not the suite as a whole.
    func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        testCase == nil ? nil : self
    }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        await ThreadGate.shared.acquire()
        do {
            try await function()
        } catch {
            await ThreadGate.shared.release()
            throw error
        }
        await ThreadGate.shared.release()
    }
}

extension Trait where Self == HoldsAThread {
    /// The suite's tests block their thread: run one at a time across all such suites.
    static var holdsAThread: Self { Self() }
}

/// An async mutex: waiters are suspended in order.
actor ThreadGate {
    static let shared = ThreadGate()
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy { busy = true; return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }
}

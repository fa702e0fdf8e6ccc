import EventSourcery
import Testing

@Suite struct ChangeSignalTests {
    @Test func signalWakesEveryWaiter() async {
        let signal = ChangeSignal()
        async let first = signal.wait(timeout: .seconds(30))
        async let second = signal.wait(timeout: .seconds(30))
        // Keep signalling until both waiters have registered and returned.
        let signaller = Task {
            while !Task.isCancelled {
                signal.signal()
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        let results = await [first, second]
        signaller.cancel()
        #expect(results == [true, true])
    }

    @Test func timeoutReturnsFalse() async {
        #expect(await ChangeSignal().wait(timeout: .milliseconds(20)) == false)
    }

    @Test func cancellationReturnsFalse() async {
        let signal = ChangeSignal()
        let waiter = Task { await signal.wait(timeout: .seconds(60)) }
        waiter.cancel()
        #expect(await waiter.value == false)
    }

    @Test func aSignalBeforeTheWaitIsSeenThroughTheGeneration() async {
        let signal = ChangeSignal()
        let seen = signal.generation
        signal.signal()
        #expect(signal.generation == seen + 1)
        // A long timeout: only the remembered generation can end this wait.
        #expect(await signal.wait(since: seen, timeout: .seconds(60)) == true)
        #expect(await signal.wait(since: signal.generation, timeout: .milliseconds(20)) == false)
    }
}

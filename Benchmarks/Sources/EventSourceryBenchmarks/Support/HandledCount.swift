import Synchronization

/// The number of events the benchmark's handler has handled, and a wait for the last one
/// (without polling, which would cost the consumer measured CPU).
final class HandledCount: Sendable {
    let value = Atomic<Int>(0)
    private let target: Int
    private let reached: AsyncStream<Void>
    private let reach: AsyncStream<Void>.Continuation

    init(target: Int) {
        self.target = target
        (reached, reach) = AsyncStream.makeStream()
    }

    func add() {
        if value.add(1, ordering: .relaxed).newValue == target { reach.finish() }
    }

    /// Returns once `target` events were handled.
    func waitForTarget() async {
        for await _ in reached {}
    }
}

import NIOConcurrencyHelpers

/// The lanes' work in flight, whether the consumer is stopping, and counts for the log.
final class ConsumerState: Sendable {
    private struct State {
        var inFlight = 0
        var stopping = false
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
        var statistics = Statistics()
    }

    /// Counts of outcomes, for the log.
    struct Statistics {
        var processed = 0
        var failed = 0
        var held = 0
        var poison = 0
        var requeued = 0
    }

    private let state = NIOLockedValueBox(State())

    var isStopping: Bool { state.withLockedValue { $0.stopping } }

    var statistics: Statistics { state.withLockedValue { $0.statistics } }

    /// Starts `count` deliveries; `false` when the consumer is stopping and they should be
    /// left alone.
    func begin(_ count: Int) -> Bool {
        state.withLockedValue { state in
            guard !state.stopping else { return false }
            state.inFlight += count
            return true
        }
    }

    /// Ends deliveries begun together, counting their outcomes.
    func end(_ outcomes: [ContextConsumer.Outcome]) {
        let waiters: [CheckedContinuation<Void, Never>] = state.withLockedValue { state in
            state.inFlight -= outcomes.count
            for outcome in outcomes {
                switch outcome {
                case .processed: state.statistics.processed += 1
                case .failed: state.statistics.failed += 1
                case .held: state.statistics.held += 1
                case .poison: state.statistics.poison += 1
                case .requeued: state.statistics.requeued += 1
                }
            }
            guard state.stopping, state.inFlight == 0 else { return [] }
            defer { state.idleWaiters = [] }
            return state.idleWaiters
        }
        waiters.forEach { $0.resume() }
    }

    /// Stops starting deliveries and returns once those in flight have ended.
    func stopWhenIdle() async {
        await withCheckedContinuation { continuation in
            let idle = state.withLockedValue { state in
                state.stopping = true
                if state.inFlight == 0 { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }
}

import EventSourceryRabbitMQ
import NIOConcurrencyHelpers

/// The deliveries waiting for one lane of a ``ContextConsumer``, taken in batches.
///
/// The dispatcher puts deliveries in arrival order, each with its source stream. The lane
/// takes whatever is waiting when it is free: at most ``batchLimit`` deliveries and at most
/// one per source stream (the earliest), so the events of a stream are handled one after
/// another in stream order, while the events of different streams in one batch share an
/// inbox lookup and a commit. Deliveries left behind keep their order for the next batch.
final class ConsumerLane: Sendable {
    private struct State {
        var waiting: [(delivery: Delivery, stream: String)] = []
        var taker: CheckedContinuation<[Delivery], Never>?
        var isFinished = false
    }

    /// The most deliveries in one batch.
    let batchLimit: Int
    private let state = NIOLockedValueBox(State())

    init(batchLimit: Int) {
        self.batchLimit = max(1, batchLimit)
    }

    /// Adds a delivery of `stream`; wakes the lane when it waits.
    func put(_ delivery: Delivery, stream: String) {
        let handOver: (CheckedContinuation<[Delivery], Never>, [Delivery])? = state.withLockedValue { state in
            state.waiting.append((delivery, stream))
            guard let taker = state.taker else { return nil }
            state.taker = nil
            return (taker, take(from: &state.waiting))
        }
        if let (taker, batch) = handOver { taker.resume(returning: batch) }
    }

    /// Ends the deliveries: ``next()`` returns what still waits, then an empty batch.
    func finish() {
        let taker = state.withLockedValue { state in
            state.isFinished = true
            defer { state.taker = nil }
            return state.taker
        }
        taker?.resume(returning: [])
    }

    /// The next batch, waiting for a delivery when none is there; empty once the lane is
    /// finished and nothing waits. One lane task calls it at a time.
    func next() async -> [Delivery] {
        await withCheckedContinuation { continuation in
            let batch: [Delivery]? = state.withLockedValue { state in
                if !state.waiting.isEmpty { return take(from: &state.waiting) }
                if state.isFinished { return [] }
                state.taker = continuation
                return nil
            }
            if let batch { continuation.resume(returning: batch) }
        }
    }

    private func take(from waiting: inout [(delivery: Delivery, stream: String)]) -> [Delivery] {
        var streams: Set<String> = []
        var batch: [Delivery] = []
        var rest: [(delivery: Delivery, stream: String)] = []
        for entry in waiting {
            if batch.count < batchLimit, streams.insert(entry.stream).inserted {
                batch.append(entry.delivery)
            } else {
                rest.append(entry)
            }
        }
        waiting = rest
        return batch
    }
}

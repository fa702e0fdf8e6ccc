import EventSourceryRabbitMQ
import Synchronization

/// Acknowledges settled deliveries in the order they arrived, so a `multiple` ack never
/// covers a delivery that is still being processed in another lane.
///
/// Deliveries register on arrival and settle when processed, in any order. A requeued
/// delivery is rejected at once; acknowledged ones are covered by one `multiple` ack up to
/// the last delivery of the settled prefix, once ``batchSize`` of them are waiting (or on
/// ``flush()``). Acks and rejections go out under one lock.
final class AcknowledgementTracker: Sendable {
    private struct State {
        /// Registered deliveries not yet covered by an ack, in arrival order, with whether
        /// each has settled as acknowledged.
        var window: [(delivery: Delivery, acknowledged: Bool?)] = []
        /// The last delivery of the settled prefix and how many acks it stands for.
        var pending: (last: Delivery?, count: Int) = (nil, 0)
    }

    private let consumer: AMQPConsumer
    private let batchSize: Int
    private let state = Mutex(State())

    init(consumer: AMQPConsumer, batchSize: Int) {
        self.consumer = consumer
        self.batchSize = max(1, batchSize)
    }

    func register(_ delivery: Delivery) {
        state.withLock { $0.window.append((delivery, nil)) }
    }

    /// Settles processed deliveries: acknowledged (committed, or dead-lettered poison) or
    /// rejected with requeue.
    func settle(_ deliveries: some Sequence<(Delivery, Bool)>) {
        state.withLock { state in
            for (delivery, acknowledge) in deliveries {
                guard let index = Self.index(of: delivery, in: state.window) else { continue }
                state.window[index].acknowledged = acknowledge
                if !acknowledge { consumer.nack(delivery, requeue: true) }
            }
            let settled = state.window.prefix { $0.acknowledged != nil }.count
            for entry in state.window.prefix(settled) where entry.acknowledged == true {
                state.pending = (entry.delivery, state.pending.count + 1)
            }
            state.window.removeFirst(settled)
            if state.pending.count >= batchSize { send(&state) }
        }
    }

    /// Where `delivery` is in the window. Delivery tags grow in arrival order on one
    /// connection, so a binary search by tag finds it; after a connection recovery the
    /// window may hold tags of two connections, and a scan does.
    private static func index(of delivery: Delivery, in window: [(delivery: Delivery, acknowledged: Bool?)]) -> Int? {
        var low = 0
        var high = window.count
        while low < high {
            let middle = (low + high) / 2
            if window[middle].delivery.deliveryTag < delivery.deliveryTag { low = middle + 1 } else { high = middle }
        }
        if low < window.count, window[low].delivery == delivery { return low }
        return window.firstIndex { $0.delivery == delivery }
    }

    /// Acknowledges the settled prefix now.
    func flush() {
        state.withLock { send(&$0) }
    }

    /// Acknowledges everything settled, also deliveries after one still unsettled (each on
    /// its own), before the consumer stops.
    func flushAll() {
        state.withLock { state in
            send(&state)
            for entry in state.window where entry.acknowledged == true {
                consumer.ack(entry.delivery)
            }
            state.window.removeAll { $0.acknowledged != nil }
        }
    }

    private func send(_ state: inout State) {
        guard let last = state.pending.last else { return }
        consumer.ack(last, multiple: state.pending.count > 1)
        state.pending = (nil, 0)
    }
}

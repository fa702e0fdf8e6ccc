import EventSourceryRabbitMQ
import NIOConcurrencyHelpers

/// The acknowledgement window of a consumer as a pure state machine: which deliveries to
/// acknowledge or reject, and when, so a `multiple` ack never covers a delivery that is still
/// being processed in another lane.
///
/// Deliveries ``register(_:)`` on arrival and ``settle(_:)`` when processed, in any order.
/// A delivery settled for requeue is rejected at once; acknowledged ones are covered by one
/// `multiple` ack up to the last delivery of the settled prefix (the deliveries before which
/// everything has settled), once ``batchSize`` of them are waiting, or on ``flush()``.
/// Every function returns the actions to take and performs none.
///
/// After a connection recovery the window may hold deliveries of both connections; the
/// consumer drops acknowledgements of the old one (the broker redelivers those messages),
/// and a `multiple` ack on the new channel covers only its own, earlier, settled deliveries.
struct AcknowledgementWindow {
    /// What to send to the broker.
    enum Action: Equatable {
        /// `basic.ack` of the delivery, and with `multiple` of every earlier one.
        case ack(Delivery, multiple: Bool)
        /// `basic.nack` of the delivery alone, with requeue.
        case requeue(Delivery)
    }

    /// Settled deliveries acknowledged together, at least 1.
    let batchSize: Int
    /// Registered deliveries not yet covered by an ack, in arrival order, with whether
    /// each has settled as acknowledged (`nil`: still in progress).
    private var window: [(delivery: Delivery, acknowledged: Bool?)] = []
    /// The last delivery of the settled prefix and how many acks it stands for.
    private var pending: (last: Delivery?, count: Int) = (nil, 0)

    init(batchSize: Int) {
        self.batchSize = max(1, batchSize)
    }

    /// Registers a delivery on arrival; it settles later.
    mutating func register(_ delivery: Delivery) {
        window.append((delivery, nil))
    }

    /// Settles processed deliveries: acknowledged (`true`) or requeued (`false`).
    /// Deliveries that are not registered (or settled before) are ignored.
    mutating func settle(_ settlements: some Sequence<(Delivery, Bool)>) -> [Action] {
        var actions: [Action] = []
        for (delivery, acknowledge) in settlements {
            guard let index = Self.index(of: delivery, in: window), window[index].acknowledged == nil else { continue }
            window[index].acknowledged = acknowledge
            if !acknowledge { actions.append(.requeue(delivery)) }
        }
        let settled = window.prefix { $0.acknowledged != nil }.count
        for entry in window.prefix(settled) where entry.acknowledged == true {
            pending = (entry.delivery, pending.count + 1)
        }
        window.removeFirst(settled)
        if pending.count >= batchSize { actions += flush() }
        return actions
    }

    /// Acknowledges the settled prefix now.
    mutating func flush() -> [Action] {
        guard let last = pending.last else { return [] }
        defer { pending = (nil, 0) }
        return [.ack(last, multiple: pending.count > 1)]
    }

    /// Acknowledges everything settled, also deliveries after one still in progress (each
    /// on its own), before the consumer stops. Deliveries in progress stay registered.
    mutating func flushAll() -> [Action] {
        var actions = flush()
        for entry in window where entry.acknowledged == true {
            actions.append(.ack(entry.delivery, multiple: false))
        }
        window.removeAll { $0.acknowledged != nil }
        return actions
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
}

/// Runs an ``AcknowledgementWindow`` for a consumer's lanes: its decisions are taken and
/// sent under one lock, so acknowledgements leave in the order the window decided them.
final class AcknowledgementTracker: Sendable {
    private let consumer: AMQPConsumer
    private let window: NIOLockedValueBox<AcknowledgementWindow>

    init(consumer: AMQPConsumer, batchSize: Int) {
        self.consumer = consumer
        self.window = NIOLockedValueBox(AcknowledgementWindow(batchSize: batchSize))
    }

    func register(_ delivery: Delivery) {
        window.withLockedValue { $0.register(delivery) }
    }

    /// Settles processed deliveries: acknowledged, or requeued.
    func settle(_ deliveries: some Sequence<(Delivery, Bool)>) {
        window.withLockedValue { execute($0.settle(deliveries)) }
    }

    /// Acknowledges the settled prefix now.
    func flush() {
        window.withLockedValue { execute($0.flush()) }
    }

    /// Acknowledges everything settled before the consumer stops.
    func flushAll() {
        window.withLockedValue { execute($0.flushAll()) }
    }

    private func execute(_ actions: [AcknowledgementWindow.Action]) {
        for action in actions {
            switch action {
            case .ack(let delivery, let multiple): consumer.ack(delivery, multiple: multiple)
            case .requeue(let delivery): consumer.nack(delivery, requeue: true)
            }
        }
    }
}

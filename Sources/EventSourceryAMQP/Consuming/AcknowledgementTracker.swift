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

    /// Whether every registered delivery has settled and been acknowledged (or rejected).
    var isIdle: Bool { window.isEmpty && pending.count == 0 }

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

/// Runs an ``AcknowledgementWindow`` for each of a consumer's subscriptions (one per inbox
/// partition, each on its own channel, where a `multiple` ack covers only that channel's
/// deliveries): decisions are taken and sent under one lock, so acknowledgements leave in the
/// order the windows decided them. A delivery belongs to the subscription of its consumer tag.
final class AcknowledgementTracker: Sendable {
    private let consumers: [String: AMQPConsumer]
    private let windows: NIOLockedValueBox<[String: AcknowledgementWindow]>

    init(consumers: [AMQPConsumer], batchSize: Int) {
        self.consumers = Dictionary(consumers.map { ($0.consumerTag, $0) }, uniquingKeysWith: { first, _ in first })
        self.windows = NIOLockedValueBox(self.consumers.mapValues { _ in AcknowledgementWindow(batchSize: batchSize) })
    }

    func register(_ delivery: Delivery) {
        windows.withLockedValue { $0[delivery.consumerTag]?.register(delivery) }
    }

    /// Settles processed deliveries: acknowledged, or requeued.
    func settle(_ deliveries: some Sequence<(Delivery, Bool)>) {
        let byConsumer = Dictionary(grouping: deliveries, by: { $0.0.consumerTag })
        windows.withLockedValue { windows in
            for (tag, settlements) in byConsumer {
                guard let actions = windows[tag]?.settle(settlements) else { continue }
                execute(actions, tag: tag)
            }
        }
    }

    /// Acknowledges the settled prefixes now.
    func flush() {
        windows.withLockedValue { windows in
            for tag in Array(windows.keys) { execute(windows[tag]?.flush() ?? [], tag: tag) }
        }
    }

    /// Acknowledges everything settled before the consumer stops.
    func flushAll() {
        windows.withLockedValue { windows in
            for tag in Array(windows.keys) { execute(windows[tag]?.flushAll() ?? [], tag: tag) }
        }
    }

    /// Whether every delivery registered so far has settled and been acknowledged.
    var isIdle: Bool {
        windows.withLockedValue { $0.values.allSatisfy(\.isIdle) }
    }

    private func execute(_ actions: [AcknowledgementWindow.Action], tag: String) {
        guard let consumer = consumers[tag] else { return }
        for action in actions {
            switch action {
            case .ack(let delivery, let multiple): consumer.ack(delivery, multiple: multiple)
            case .requeue(let delivery): consumer.nack(delivery, requeue: true)
            }
        }
    }
}

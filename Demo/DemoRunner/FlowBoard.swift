import EventSourceryRabbitMQ  // Duration.seconds
import DemoContexts
import EventSourcery
import Foundation

/// What the demo knows about its orders, folded from the order store as events arrive.
struct FlowBoard {
    /// When each order was placed (its `OrderPlaced` commit).
    private(set) var placedAt: [String: Date] = [:]
    /// The orders paid so far.
    private(set) var paid: Set<String> = []
    /// Completed and cancelled orders with the time from placement to their outcome.
    private(set) var completed: [String: Duration] = [:]
    private(set) var cancelled: [String: Duration] = [:]
    /// The cancelled orders whose payment did not answer before the deadline.
    private(set) var timedOut: Set<String> = []
    /// `OrderCompleted` and `OrderCancelled` events read (one per settled order when each settles once).
    private(set) var outcomeEvents = 0
    /// The order store's position read up to.
    private var position: Int64 = 0

    var settledCount: Int { completed.count + cancelled.count }

    /// The event types the board folds; the others (the process manager's) are not decoded.
    private static let boardTypes: Set<String> = [
        OrderPlaced.typeName, OrderPaid.typeName, OrderCompleted.typeName, OrderCancelled.typeName,
    ]

    /// Reads the order store's new events, decoding only the order's own.
    mutating func update(from store: EventStore) async throws {
        while true {
            let events = try await store.readAllRecorded(after: position, limit: 1000)
            for recorded in events where Self.boardTypes.contains(recorded.event.typeName) {
                apply(try store.registry.decode(recorded))
            }
            guard let last = events.last else { return }
            position = last.position
        }
    }

    private mutating func apply(_ stored: StoredEvent) {
        let at = stored.envelope.createdAt
        switch stored.event {
        case let event as OrderPlaced:
            placedAt[event.orderID] = at
        case let event as OrderPaid:
            paid.insert(event.orderID)
        case let event as OrderCompleted:
            completed[event.orderID] = latency(of: event.orderID, until: at)
            outcomeEvents += 1
        case let event as OrderCancelled:
            cancelled[event.orderID] = latency(of: event.orderID, until: at)
            if event.reason == Fulfilment.timeoutReason { timedOut.insert(event.orderID) }
            outcomeEvents += 1
        default:
            break
        }
    }

    private func latency(of order: String, until date: Date) -> Duration {
        .seconds(date.timeIntervalSince(placedAt[order] ?? date))
    }

    /// Flow latencies (placement to outcome) of every settled order but those that timed out.
    var latencies: [Duration] {
        Array(completed.values) + cancelled.filter { !timedOut.contains($0.key) }.map(\.value)
    }
}

extension [Duration] {
    /// The `fraction` percentile (nearest rank) of the durations, or zero when empty.
    func percentile(_ fraction: Double) -> Duration {
        guard !isEmpty else { return .zero }
        let sorted = self.sorted()
        let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
        return sorted[Swift.min(Swift.max(rank, 0), sorted.count - 1)]
    }
}

extension Duration {
    /// Milliseconds with one decimal, for the terminal.
    var milliseconds: String { String(format: "%.1f ms", seconds * 1000) }
}

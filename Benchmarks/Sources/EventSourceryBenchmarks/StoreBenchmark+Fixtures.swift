import EventSourcery
import Foundation

/// The events and aggregate the store benchmark writes and loads.
enum StoreBenchmarkFixtures {
    /// A small event, about 40 bytes of JSON, typical of a domain event.
    struct Deposited: Event {
        var accountID: String
        var amount: Int
    }

    /// An account that sums its deposits; it snapshots its balance and event count.
    struct Account: SnapshottingAggregate {
        static let category = "bench"
        let id: String
        var balance = 0
        var applied = 0
        var uncommittedEvents: [any Event] = []

        struct SnapshotState: Codable, Sendable {
            var balance: Int
            var applied: Int
        }

        init(id: String) { self.id = id }

        init(id: String, snapshotState: SnapshotState) {
            self.id = id
            balance = snapshotState.balance
            applied = snapshotState.applied
        }

        var snapshotState: SnapshotState { SnapshotState(balance: balance, applied: applied) }

        mutating func apply(_ event: any Event) {
            applied += 1
            if let deposited = event as? Deposited { balance += deposited.amount }
        }

        mutating func deposit(_ amount: Int) { record(Deposited(accountID: id, amount: amount)) }
    }

    static let registry = EventRegistry([Deposited.self])

    static func deposits(_ count: Int, account: String) -> [EventEnvelope] {
        (0..<count).map { EventEnvelope(Deposited(accountID: account, amount: $0 % 100)) }
    }
}

// A tour of the event-sourcing core on the embedded SQLite store: events, an aggregate
// with an invariant, the repository with optimistic concurrency, the outbox, the inbox,
// a subscription, a projection and a point-in-time read.
//
//   swift run eventsourcery-example [database-path]

import EventSourcery
import EventSourcerySQLite
import Foundation

// MARK: Events

struct OrderPlaced: Event {
    var customer: String
    var amount: Int
}

struct OrderPaid: Event {
    var amount: Int
}

struct OrderShipped: Event {}

// MARK: Aggregate

enum OrderError: Error, CustomStringConvertible {
    case notPlaced, alreadyPaid, unpaid

    var description: String {
        switch self {
        case .notPlaced: "the order was never placed"
        case .alreadyPaid: "the order is already paid"
        case .unpaid: "an unpaid order cannot ship"
        }
    }
}

struct Order: Aggregate {
    static let category = "order"
    enum Status: String { case new, placed, paid, shipped }

    let id: String
    var status = Status.new
    var amount = 0
    var uncommittedEvents: [any Event] = []

    init(id: String) { self.id = id }

    mutating func apply(_ event: any Event) {
        switch event {
        case let placed as OrderPlaced:
            status = .placed
            amount = placed.amount
        case is OrderPaid: status = .paid
        case is OrderShipped: status = .shipped
        default: break
        }
    }

    mutating func place(customer: String, amount: Int) { record(OrderPlaced(customer: customer, amount: amount)) }

    mutating func pay() throws {
        guard status != .new else { throw OrderError.notPlaced }
        guard status == .placed else { throw OrderError.alreadyPaid }
        record(OrderPaid(amount: amount))
    }

    mutating func ship() throws {
        guard status == .paid else { throw OrderError.unpaid }
        record(OrderShipped())
    }
}

// MARK: Projection

struct Revenue: Projection {
    let name = "revenue"
    var initialState: [String: Int] { [:] }

    func apply(_ event: StoredEvent, to state: inout [String: Int]) {
        if let paid = event.envelope.as(OrderPaid.self) {
            state["paid", default: 0] += paid.amount
        } else if event.event is OrderPlaced {
            state["orders", default: 0] += 1
        }
    }
}

// MARK: Tour

try await Tour.run(path: CommandLine.arguments.dropFirst().first ?? ".run/example/orders.sqlite")

enum Tour {
    static func run(path: String) async throws {

        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }

        var subscriptions = EventSubscriptions()
        subscriptions.subscribe(to: OrderShipped.self) { _, stored in
            print("  subscription: \(stored.streamID) shipped (position \(stored.position))")
        }
        let store = EventStore(
            storage: try SQLiteEventStorage(path: path),
            registry: EventRegistry([OrderPlaced.self, OrderPaid.self, OrderShipped.self]),
            subscriptions: subscriptions
        )
        let orders = Repository<Order>(store: store, saveMode: .publish)

        print("1. Place, pay and ship orders through the repository (events + outbox rows in one transaction)")
        for (index, amount) in [120, 80, 45].enumerated() {
            try await orders.new("\(index + 1)") { $0.place(customer: "customer-\(index + 1)", amount: amount) }
        }
        try await orders.update("1") { try $0.pay() }
        try await orders.update("2") { try $0.pay() }
        let beforeShipping = Date()
        try await Task.sleep(for: .milliseconds(5))
        try await orders.update("1") { try $0.ship() }

        print("2. Invariants and optimistic concurrency")
        do {
            try await orders.update("1") { try $0.pay() }
        } catch {
            print("  paying order 1 twice is refused: \(error)")
        }
        do {
            var first = WriteBatch()
            var second = WriteBatch()
            try await orders.update("3", in: &first) { try $0.pay() }
            try await orders.update("3", in: &second) { try $0.pay() }
            try await store.commit(first)
            do {
                try await store.commit(second)
            } catch let error as EventStoreError where error.code == .concurrencyConflict {
                print(
                    "  two concurrent payments of order 3: one wins, the other gets \(error.code) (expected \(error.expectedVersion!), actual \(error.actualVersion!))"
                )
            }
        }

        print("3. Reading: the whole stream, and the stream as it was before shipping")
        for event in try await store.load("order-1") {
            print("  order-1 v\(event.streamVersion) \(event.envelope.typeName) at position \(event.position)")
        }
        let pastState = try await store.load("order-1", asOf: beforeShipping).map(\.envelope.typeName)
        print("  order-1 as of before shipping: \(pastState)")

        print("4. A projection over the global order")
        let revenue = try await ProjectionRunner(projection: Revenue(), store: store).catchUp()
        print("  \(revenue.state) after \(revenue.applied) events")

        print("5. The outbox the relay publishes from")
        let counts = try await store.storage.outboxCounts()
        print("  pending \(counts.pending), published \(counts.published)")

        print("6. The inbox: a consumer handles an event at most once")
        let incoming = UUID()
        for attempt in 1...2 {
            let outcome = try await store.processOnce(consumer: "shipping", eventID: incoming) { batch in
                try await orders.update("2", in: &batch) { try $0.ship() }
            }
            print("  delivery \(attempt): \(outcome.wasProcessed ? "processed" : "already processed, skipped")")
        }
        print("Done: \(try await store.storage.headPosition()) events in \(path)")
    }
}

import DemoContexts
import EventSourcery

extension EventStore {
    /// Every event of the store, in commit order.
    func allEvents() async throws -> [StoredEvent] {
        var events: [StoredEvent] = []
        while true {
            let page = try await readAll(after: events.last?.position ?? 0, limit: 5000)
            events += page
            if page.count < 5000 { return events }
        }
    }

    /// The state of every order, folded from one read of the demo's order store.
    func orderStates() async throws -> [String: DemoContext.OrderState] {
        var states: [String: DemoContext.OrderState] = [:]
        for event in try await allEvents() {
            switch event.event {
            case let placed as OrderPlaced: states[placed.orderID] = .placed
            case let paid as OrderPaid: states[paid.orderID] = .paid
            case let cancelled as OrderCancelled: states[cancelled.orderID] = .cancelled
            case let completed as OrderCompleted: states[completed.orderID] = .completed
            default: break
            }
        }
        return states
    }
}

// The shipping context, written with the service kit: it ships every order the order context
// completes. One process consumes `shipping.inbox` (bound to `order.OrderCompleted`), relays
// the shipping outbox to `shipping.events` and keeps the projection of shipped orders.
//
//   swift run shipping-service --context shipping --config Examples/Shipping/shipping.yaml

import EventSourcery
import EventSourceryAMQP
import EventSourceryServices

// MARK: Events

/// The order context's event, as far as shipping reads it (other fields are ignored).
struct OrderCompleted: Event {
    var orderID: String
}

/// Shipping's own event: the order's parcel went to the carrier.
struct OrderShipped: Event {
    var orderID: String
    var trackingNumber: String
}

// MARK: Aggregate

/// The shipment of one order, stream `shipment-<order id>`.
struct Shipment: Aggregate {
    static let category = "shipment"
    let id: String
    var trackingNumber: String?
    var uncommittedEvents: [any Event] = []

    init(id: String) { self.id = id }

    mutating func apply(_ event: any Event) {
        if let shipped = event as? OrderShipped { trackingNumber = shipped.trackingNumber }
    }

    /// Ships the order; a shipped order is not shipped again.
    mutating func ship() {
        guard trackingNumber == nil else { return }
        record(OrderShipped(orderID: id, trackingNumber: "TRK-\(id.uppercased())"))
    }
}

// MARK: Handler

/// `ship-order`: on `order.OrderCompleted`, ships the order in the consumer's transaction;
/// `.publish` puts `OrderShipped` in the outbox, and the kit's relay publishes it. The
/// consumer makes the completed order its cause, in the order's flow.
func shipOrder(store: EventStore) -> EventHandler {
    let shipments = Repository<Shipment>(store: store, saveMode: .publish)
    return EventHandler(name: "ship-order", subscriptions: [EventSubscription(source: "order", type: "OrderCompleted")]) {
        input, batch in
        guard let completed = input.as(OrderCompleted.self) else { return }
        if try await shipments.load(completed.orderID) == nil {
            try await shipments.new(completed.orderID, in: &batch) { $0.ship() }
        }
    }
}

// MARK: Projection

/// The orders shipped so far, a read model kept caught up in the shipping store.
struct ShippedOrders: Projection {
    let name = "shipped-orders"
    var initialState: [String] { [] }

    func apply(_ event: StoredEvent, to orders: inout [String]) {
        if let shipped = event.event as? OrderShipped { orders.append(shipped.orderID) }
    }
}

// MARK: Main

@main
enum ShippingService {
    static func main() async {
        await ContextService(commandName: "shipping-service", abstract: "Ships the orders the order context completes.").main([
            ContextModule(
                name: "shipping", eventTypes: [OrderCompleted.self, OrderShipped.self],
                projections: { store in [ProjectionService(ProjectionRunner(projection: ShippedOrders(), store: store))] }
            ) { store in [shipOrder(store: store)] }
        ])
    }
}

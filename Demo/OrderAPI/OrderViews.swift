import DemoContexts
import EventSourcery
import Foundation

/// The body of `201 Created` after `POST /orders`.
struct PlacedOrder: Encodable {
    var orderId: String
    var status = DemoContext.OrderState.placed.rawValue
    var amount: Int
    var eventId: String
    var correlationId: String?

    init(orderID: String, amount: Int, placed: EventEnvelope) {
        self.orderId = orderID
        self.amount = amount
        self.eventId = placed.id.lowercasedString
        self.correlationId = placed.metadata.correlationID?.lowercasedString
    }
}

/// The body of `GET /orders/{id}`: the order's state folded from its stream, and the stream
/// as a timeline.
struct OrderView: Encodable {
    /// One event of the order's stream.
    struct TimelineEntry: Encodable {
        var event: String
        var at: String
        var eventId: String
        var causationId: String?
        var streamVersion: Int64
        var detail: EventDetail

        init(_ stored: StoredEvent) {
            let envelope = stored.envelope
            event = envelope.typeName
            at = envelope.createdAt.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            eventId = envelope.id.lowercasedString
            causationId = envelope.metadata.causationID?.lowercasedString
            streamVersion = stored.streamVersion
            detail = EventDetail(event: envelope.event)
        }
    }

    var orderId: String
    var status: String
    var amount: Int?
    var timeline: [TimelineEntry]
    var correlationId: String?

    /// The view of the order `orderID` from its stream's events, oldest first.
    init(orderID: String, events: [StoredEvent]) {
        var state = DemoContext.OrderState.none
        var amount: Int?
        for stored in events {
            switch stored.event {
            case let placed as OrderPlaced:
                state = .placed
                amount = placed.amount
            case is OrderPaid: state = .paid
            case is OrderCancelled: state = .cancelled
            case is OrderCompleted: state = .completed
            default: break
            }
        }
        self.orderId = orderID
        self.status = state.rawValue
        self.amount = amount
        self.timeline = events.map(TimelineEntry.init)
        self.correlationId = events.first?.envelope.metadata.correlationID?.lowercasedString
    }
}

/// An event's own fields, encoded as the event encodes itself.
struct EventDetail: Encodable {
    var event: any Event

    func encode(to encoder: any Encoder) throws {
        try event.encode(to: encoder)
    }
}

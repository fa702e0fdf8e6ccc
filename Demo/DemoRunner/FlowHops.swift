import EventSourceryRabbitMQ  // Duration.seconds
import Foundation

/// The six broker crossings of a completed order's coordinated flow, timed from the stored
/// creation times of its events and commands.
///
/// Each hop runs from the creation of a cause (an event or command, committed with it) to
/// the creation of its effect in the receiving context: the cause's commit, the relay's wake-up
/// and round (claim, publish, confirm), the broker, the consumer's prefetch and lane, and the
/// handler up to the effect. The creation times come from one machine's clock in the demo.
struct FlowHops {
    /// A crossing: from the first record of `cause` to the first record of `effect` created
    /// at or after it, within one flow (correlation id).
    struct Hop: Sendable {
        var cause: String
        var effect: String
        /// What happens in between, for the summary.
        var path: String
    }

    /// The coordinated flow of a completed order, in order.
    static let hops: [Hop] = [
        Hop(cause: "OrderPlaced", effect: "ChargePayment", path: "order relay, order inbox, process manager"),
        Hop(cause: "ChargePayment", effect: "PaymentSucceeded", path: "order relay, payment command consumer"),
        Hop(cause: "PaymentSucceeded", effect: "IssueInvoice", path: "payment relay, order inbox, process manager"),
        Hop(cause: "IssueInvoice", effect: "InvoiceIssued", path: "order relay, invoice command consumer"),
        Hop(cause: "InvoiceIssued", effect: "SettleOrder", path: "invoice relay, order inbox, process manager"),
        Hop(cause: "SettleOrder", effect: "OrderCompleted", path: "order relay, order command consumer"),
    ]

    private static let names = Set(hops.flatMap { [$0.cause, $0.effect] })

    /// The creation times of each flow's records of the hops' types.
    private var times: [UUID: [String: [Date]]] = [:]

    /// Notes a record of the flow `correlationID` (ignored unless a hop names its type).
    mutating func record(_ typeName: String, correlationID: UUID?, createdAt: Date) {
        guard let correlationID, Self.names.contains(typeName) else { return }
        times[correlationID, default: [:]][typeName, default: []].append(createdAt)
    }

    /// Each hop's durations over the flows that went through all six hops (completed orders).
    var durations: [(hop: Hop, durations: [Duration])] {
        var result = Self.hops.map { (hop: $0, durations: [Duration]()) }
        for flow in times.values {
            var cause: Date?
            var hops: [Duration] = []
            for hop in Self.hops {
                guard let start = cause ?? flow[hop.cause]?.min(),
                    let end = flow[hop.effect]?.filter({ $0 >= start }).min()
                else { break }
                hops.append(.seconds(end.timeIntervalSince(start)))
                cause = end
            }
            guard hops.count == Self.hops.count else { continue }
            for index in hops.indices { result[index].durations.append(hops[index]) }
        }
        return result
    }
}

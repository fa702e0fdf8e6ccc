import EventSourceryRabbitMQ
import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourceryServices
import FlowTrace
import Foundation
import Logging

/// The orders a demo run places: deterministic amounts, some above the payment limit.
struct OrderPlan: Sendable {
    struct Order: Sendable {
        var id: String
        var amount: Int
    }

    let orders: [Order]
    let declineAbove: Int

    init(count: Int, declineAbove: Int) {
        self.declineAbove = declineAbove
        // Amounts spread over 20...1419: about three in ten orders are declined.
        orders = (0..<count).map { index in
            Order(id: String(format: "%05d", index + 1), amount: 20 + (index * 7919) % 1400)
        }
    }

    /// The orders the simulated gateway declines.
    var declined: Set<String> { Set(orders.filter { $0.amount > declineAbove }.map(\.id)) }
}

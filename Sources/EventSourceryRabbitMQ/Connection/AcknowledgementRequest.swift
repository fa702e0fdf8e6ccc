import Foundation

/// An acknowledgement (ack, nack or reject) queued for the connection thread. Kept apart
/// from ``ConnectionJob``s because consumers send one per message: a plain value, no closures.
struct AcknowledgementRequest: Sendable {
    enum Kind: Sendable {
        case ack(multiple: Bool)
        case nack(multiple: Bool, requeue: Bool)
        case reject(requeue: Bool)
    }

    var channel: UInt16
    var generation: UInt64
    var deliveryTag: UInt64
    var kind: Kind
}

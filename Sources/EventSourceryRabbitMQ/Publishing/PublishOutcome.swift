/// What became of one published message.
///
/// Only ``confirmed`` means the broker took responsibility for the message (it is in every
/// queue it was routed to, on disk for durable queues). Everything else means "publish it
/// again later, or park it".
public enum PublishOutcome: Sendable, Equatable {
    /// The broker confirmed the message with `basic.ack`.
    case confirmed
    /// The broker refused the message with `basic.nack` (e.g. a full queue with
    /// `x-overflow: reject-publish`).
    case nacked
    /// The message was `mandatory` and no queue was bound to receive it (`basic.return`).
    case returned(replyCode: UInt16, replyText: String)
    /// The connection or channel was lost before the broker answered: the message may or may
    /// not have arrived.
    case notConfirmed(AMQPError)

    /// Whether the broker took the message.
    public var isConfirmed: Bool { self == .confirmed }

    /// Outcomes are equal when their cases are; ``notConfirmed(_:)`` compares error codes only.
    public static func == (lhs: PublishOutcome, rhs: PublishOutcome) -> Bool {
        switch (lhs, rhs) {
        case (.confirmed, .confirmed), (.nacked, .nacked): return true
        case let (.returned(a, b), .returned(c, d)): return a == c && b == d
        case let (.notConfirmed(a), .notConfirmed(b)): return a.code == b.code
        default: return false
        }
    }
}

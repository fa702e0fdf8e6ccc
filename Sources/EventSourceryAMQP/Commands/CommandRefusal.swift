/// An error by which an aggregate refuses a command for a domain reason (the order is already
/// paid, the amount is not positive).
///
/// A ``CommandConsumer`` never drops a refused command silently: it records a
/// ``CommandRejected`` event with the ``reason`` in the same transaction as the inbox entry,
/// and publishes it for the sender to react to. Any other error a handler throws is a failure:
/// the command is retried, then dead-lettered.
public protocol CommandRefusal: Error {
    /// Why the command was refused, for the ``CommandRejected`` event.
    var reason: String { get }
}

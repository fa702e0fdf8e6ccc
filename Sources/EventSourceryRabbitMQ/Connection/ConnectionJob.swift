import Foundation

/// A unit of work for the connection thread.
struct ConnectionJob: Sendable {
    /// Runs on the connection thread with exclusive access to the session.
    var run: @Sendable (ConnectionSession) -> Void
    /// Called instead of `run` when the job can never run (client closed, recovery gave up).
    var fail: @Sendable (AMQPError) -> Void
    /// Whether the job only writes a small frame and never waits for the broker (ack, nack,
    /// reject): runs of such jobs are sent with the socket corked.
    var isWriteOnly = false
}

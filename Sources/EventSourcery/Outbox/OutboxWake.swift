/// Why a wait for outbox changes ended: the pure decision behind a storage's
/// ``EventStorage/waitForOutboxChange(timeout:)`` when it watches other processes' commits.
package enum OutboxWake: Equatable, Sendable {
    /// A commit through this storage signalled it.
    case signalled
    /// A notification of a write by another process (`inotify` on SQLite's write-ahead log).
    case notified
    /// The fallback poll found the write-ahead log changed (no notification came).
    case polled
    /// The timeout passed without a change.
    case timedOut
    /// The waiting task was cancelled.
    case cancelled

    /// What one step of the wait means: `nil` to keep waiting.
    ///
    /// - Parameters:
    ///   - signalled: the storage's change signal fired (a local commit or a notification).
    ///   - notified: a notification arrived since the wait's mark.
    ///   - logChanged: the poll found the log's modification time or size changed.
    ///   - timeLeft: whether the wait's deadline is still ahead.
    package static func after(signalled: Bool, notified: Bool, logChanged: Bool, timeLeft: Bool) -> OutboxWake? {
        if signalled { return notified ? .notified : .signalled }
        if logChanged { return .polled }
        return timeLeft ? nil : .timedOut
    }
}

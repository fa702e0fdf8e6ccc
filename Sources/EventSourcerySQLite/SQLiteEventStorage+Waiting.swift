package import EventSourcery
import Foundation
import NIOConcurrencyHelpers

/// Waking relays: commits through this storage signal them at once; commits by other
/// processes on the same file are reported by `inotify` on the write-ahead log, with a poll
/// of the log's modification time as the fallback.
extension SQLiteEventStorage {
    /// The change signal's generation, the notification count and the write-ahead log's
    /// modification stamp when a claim started.
    struct OutboxMark: Sendable {
        var generation: UInt64
        var notifications: UInt64
        var logStamp: [Double]?
    }

    /// Returns when an append with outbox entries (or a command) commits or parked entries
    /// are requeued through this storage, when another process writes to the same database
    /// file, or after `timeout`.
    ///
    /// Writes through this storage wake the waiter at once. A commit by another process (an
    /// API process appending while the relay runs in its own) is reported within about a
    /// millisecond on Linux: the first wait starts a watcher that reads `inotify` events
    /// for the write-ahead log on a thread of its own. The watcher reports the log's first
    /// write, before the other process's commit is synced; the relay's claim is a write
    /// transaction, so it waits for that commit's lock and then reads it. Where no watcher
    /// runs (other platforms, ``Configuration/watchesOtherProcesses`` off, or no inotify
    /// watch left), the log's modification time is checked every
    /// ``Configuration/crossProcessPollInterval`` (with one file-status call and no
    /// database query); the check also runs beside the watcher, as a safety net. A spurious
    /// wake-up only costs the relay one empty claim.
    ///
    /// A change made after the relay's last claim started and before this wait is not
    /// missed: the claim marks the change signal's generation and the log's modification
    /// stamp; the wait returns at once when the generation moved, and within one poll
    /// interval when only the stamp did.
    public func waitForOutboxChange(timeout: Duration) async {
        _ = await waitForOutboxChangeReason(timeout: timeout)
    }

    /// ``waitForOutboxChange(timeout:)``, returning why it ended.
    package func waitForOutboxChangeReason(timeout: Duration) async -> OutboxWake {
        watchOtherProcesses()
        let deadline = ContinuousClock.now + timeout
        let mark =
            outboxClaimMark.withLockedValue { mark in
                defer { mark = nil }
                return mark
            } ?? currentOutboxMark()
        while !Task.isCancelled {
            let remaining = deadline - ContinuousClock.now
            var signalled = false
            if remaining > .zero {
                signalled = await outboxChanged.wait(
                    since: mark.generation, timeout: min(remaining, configuration.crossProcessPollInterval))
            }
            let wake = OutboxWake.after(
                signalled: signalled,
                notified: commitNotifications.withLockedValue { $0 } != mark.notifications,
                logChanged: !signalled && Self.modificationStamp(of: logPath) != mark.logStamp,
                timeLeft: deadline > ContinuousClock.now
            )
            if let wake { return wake }
        }
        return .cancelled
    }

    /// How many writes to the write-ahead log the watcher has reported.
    package var crossProcessNotificationCount: UInt64 {
        commitNotifications.withLockedValue { $0 }
    }

    /// Marks where a claim starts, unless an earlier claim since the last wait did; the
    /// first claim starts the watcher, so it is in place before the relay waits.
    func markOutboxClaim() {
        watchOtherProcesses()
        let current = currentOutboxMark()
        outboxClaimMark.withLockedValue { mark in
            if mark == nil { mark = current }
        }
    }

    private func watchOtherProcesses() {
        if configuration.watchesOtherProcesses { commitWatcher.start() }
    }

    private func currentOutboxMark() -> OutboxMark {
        // The generation first: the watcher counts before it signals, so a notification
        // seen in the generation is also seen in the count.
        let generation = outboxChanged.generation
        return OutboxMark(
            generation: generation, notifications: commitNotifications.withLockedValue { $0 },
            logStamp: Self.modificationStamp(of: logPath))
    }

    private var logPath: String {
        configuration.path + "-wal"
    }

    /// The modification time and size of a file, or `nil` when it does not exist.
    private static func modificationStamp(of path: String) -> [Double]? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSinceReferenceDate ?? 0
        let size = (attributes[.size] as? NSNumber)?.doubleValue ?? 0
        return [modified, size]
    }
}

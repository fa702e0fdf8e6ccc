import EventSourcery
import Logging
import NIOConcurrencyHelpers
import PostgresNIO

/// Notices after commit: how commits wake relays without serialising on PostgreSQL's
/// notification lock.
///
/// A transaction that runs `NOTIFY` (`pg_notify`) takes one lock per server in its
/// pre-commit and holds it until its commit ends, including the flush of its commit record
/// to disk; so transactions that notify commit one after another, each waiting for its own
/// flush, where other transactions share one flush (group commit). Appends that notified
/// inside their own transaction could therefore not commit in parallel.
///
/// While ``run()`` runs, commits that add outbox or command rows do not notify inside their
/// transaction. After the commit they ask the storage's notice sender (a task of ``run()``)
/// for a notice, and wake this storage's own waiters at once. The sender sends one notice
/// per request, coalescing requests made while a notice is on its way: a short transaction
/// of its own (`pg_notify` with `synchronous_commit` off, so it holds the lock for
/// microseconds, not for a flush), on a pooled connection. Listeners thus learn of a commit
/// one round trip after it; under load one notice covers all commits of its round trip. A
/// storage whose ``run()`` does not run notifies inside the transaction, as before.
///
/// A notice lost between a commit and its sending (the process dies) delays the relays of
/// other processes until their poll interval: notices only wake, the outbox is the record.
extension PostgresEventStorage {
    /// Whether commits leave their notification to the notice sender (``run()`` runs it).
    var defersNotices: Bool {
        lifecycle.withLockedValue { $0.sendsNotices }
    }

    /// Called after a commit that added outbox or command rows without notifying: wakes this
    /// storage's waiters and asks the notice sender for a notice to the other listeners.
    func committedWithoutNotice() {
        outboxDidChange()
        noticeRequests.signal()
    }

    /// The notice sender: sends a notice whenever commits asked for one since the last,
    /// until cancelled. A failed notice is retried after a second.
    func sendNotices() async {
        let channel = configuration.notificationChannel
        let payload = configuration.schema
        // Requests made before this task started count too: the generation starts at 0.
        var sent: UInt64 = 0
        while !Task.isCancelled {
            let requested = noticeRequests.generation
            guard requested != sent else {
                _ = await noticeRequests.wait(since: sent, timeout: .seconds(3600))
                continue
            }
            do {
                _ = try await runningClient().query(
                    "SELECT set_config('synchronous_commit', 'off', true), pg_notify(\(channel), \(payload))", logger: logger
                ).collect()
                sent = requested
            } catch {
                if Task.isCancelled { break }
                logger.warning(
                    "Cannot send an outbox notification; retrying", metadata: ["es.schema": "\(payload)", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}

extension WriteBatch {
    /// Whether committing the batch gives relays work: events it publishes or commands.
    var wakesRelays: Bool {
        !commands.isEmpty || appends.contains { $0.publishes && !$0.events.isEmpty }
    }
}

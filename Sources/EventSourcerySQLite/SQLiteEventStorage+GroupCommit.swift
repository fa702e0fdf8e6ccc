import EventSourcery
import GRDB
import Synchronization

/// Group commit: batches that wait for the writer share one transaction, and one `fsync`.
///
/// With `synchronous = FULL` a transaction costs one `fsync` of the WAL, which takes
/// about a millisecond or more on common disks whatever the transaction holds. While the
/// writer commits one transaction, the batches submitted meanwhile queue up; the writer
/// then commits all of them in the next transaction, each inside its own savepoint. A
/// batch that fails (a version conflict, a duplicate event id) rolls back to its
/// savepoint and fails alone; the others commit. Every caller returns only after the
/// shared transaction is on disk, so each commit stays atomic and durable, while the
/// throughput of concurrent writers is no longer bounded by one `fsync` per batch.
///
/// A single sequential writer sees no difference: its batch is alone in its transaction.
extension SQLiteEventStorage {
    /// A batch waiting for the writer.
    struct PendingCommit: Sendable {
        var batch: WriteBatch
        var continuation: CheckedContinuation<CommitOutcome, any Error>
    }

    /// The batches waiting for the writer, and whether the writer is draining them.
    struct CommitQueue: Sendable {
        var pending: [PendingCommit] = []
        var isDraining = false
    }

    /// The most events one shared transaction takes, which bounds its latency.
    static let maximumEventsPerGroup = 10_000

    /// Queues `batch` for the writer and returns when its transaction is committed.
    func enqueueCommit(_ batch: WriteBatch) async throws -> CommitOutcome {
        let pool = try openPool()
        return try await withCheckedThrowingContinuation { continuation in
            let startsDrain = commitQueue.withLock { queue in
                queue.pending.append(PendingCommit(batch: batch, continuation: continuation))
                defer { queue.isDraining = true }
                return !queue.isDraining
            }
            if startsDrain {
                pool.asyncWriteWithoutTransaction { db in self.drainCommits(db) }
            }
        }
    }

    /// Commits queued batches, group after group, until the queue is empty. Runs on the
    /// writer's queue.
    private func drainCommits(_ db: Database) {
        while true {
            let group: [PendingCommit] = commitQueue.withLock { queue in
                guard !queue.pending.isEmpty else {
                    queue.isDraining = false
                    return []
                }
                var events = 0
                var count = 0
                for pending in queue.pending {
                    events += pending.batch.eventCount
                    // Always take at least one batch, however large.
                    if count > 0, events > Self.maximumEventsPerGroup { break }
                    count += 1
                }
                defer { queue.pending.removeFirst(count) }
                return Array(queue.pending.prefix(count))
            }
            if group.isEmpty { return }
            commitGroup(group, in: db)
        }
    }

    private func commitGroup(_ group: [PendingCommit], in db: Database) {
        let path = configuration.path
        var results: [Result<CommitOutcome, any Error>] = []
        results.reserveCapacity(group.count)
        do {
            guard !isClosed else { throw Self.closedError(path: path) }
            try db.inTransaction(.immediate) {
                if group.count == 1 {
                    // Alone in its transaction: no savepoint needed, a failure rolls back all.
                    results.append(.success(try Self.commit(group[0].batch, in: db)))
                    return .commit
                }
                for pending in group {
                    do {
                        var outcome: CommitOutcome?
                        try db.inSavepoint {
                            outcome = try Self.commit(pending.batch, in: db)
                            return .commit
                        }
                        guard let outcome else { preconditionFailure("a released savepoint has an outcome") }
                        results.append(.success(outcome))
                    } catch {
                        results.append(.failure(error))
                        // Some SQLite errors (I/O, disk full) abort the whole transaction.
                        guard db.isInsideTransaction else { throw error }
                    }
                }
                return .commit
            }
        } catch {
            // The shared transaction did not commit: nothing of the group is stored.
            for (index, pending) in group.enumerated() {
                if index < results.count, case .failure(let own) = results[index] {
                    pending.continuation.resume(throwing: Self.mapped(own, path: path, configuration: configuration))
                } else {
                    pending.continuation.resume(throwing: Self.mapped(error, path: path, configuration: configuration))
                }
            }
            return
        }
        for (pending, result) in zip(group, results) {
            pending.continuation.resume(with: result.mapError { Self.mapped($0, path: path, configuration: configuration) })
        }
    }
}

import NIOConcurrencyHelpers
import EventSourcery
import GRDB

/// Group commit: batches that wait for the writer share one transaction, and one `fsync`.
///
/// With `synchronous = FULL` a transaction costs one `fsync` of the WAL, which takes
/// about a millisecond or more on common disks whatever the transaction holds. While the
/// writer commits one transaction, the batches submitted meanwhile queue up; the writer
/// then commits all of them in the next transaction. A batch that fails its checks (an
/// existing inbox entry, a version conflict) writes nothing and fails alone; the others
/// commit. A batch that fails after writing (a duplicate event id) rolls the transaction
/// back, and the group is committed again with a savepoint per batch, which contains it.
/// Every caller returns only after the shared transaction is on disk, so each commit stays
/// atomic and durable, while the throughput of concurrent writers is no longer bounded by
/// one `fsync` per batch.
///
/// A single sequential writer sees no difference: its batch is alone in its transaction.
extension SQLiteEventStorage {
    /// Batches submitted together, waiting for the writer.
    struct PendingCommit: Sendable {
        var batches: [WriteBatch]
        var continuation: CheckedContinuation<[Result<CommitOutcome, any Error>], Never>

        var eventCount: Int { batches.reduce(0) { $0 + $1.eventCount } }
    }

    /// The submissions waiting for the writer, and whether the writer is draining them.
    struct CommitQueue: Sendable {
        var pending: [PendingCommit] = []
        var isDraining = false
    }

    /// The most events one shared transaction takes, which bounds its latency.
    static let maximumEventsPerGroup = 10_000

    /// Queues `batches` for the writer and returns when their transaction is committed:
    /// one result per batch, in order.
    func enqueueCommit(_ batches: [WriteBatch]) async -> [Result<CommitOutcome, any Error>] {
        let pool: DatabasePool
        do {
            pool = try openPool()
        } catch {
            return batches.map { _ in .failure(error) }
        }
        return await withCheckedContinuation { continuation in
            let startsDrain = commitQueue.withLockedValue { queue in
                queue.pending.append(PendingCommit(batches: batches, continuation: continuation))
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
            let group: [PendingCommit] = commitQueue.withLockedValue { queue in
                guard !queue.pending.isEmpty else {
                    queue.isDraining = false
                    return []
                }
                var events = 0
                var count = 0
                for pending in queue.pending {
                    events += pending.eventCount
                    // Always take at least one submission, however large.
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
        let batches = group.flatMap(\.batches)
        var results: [Result<CommitOutcome, any Error>]
        do {
            guard !isClosed else { throw Self.closedError(path: path) }
            do {
                results = try Self.commit(batches, in: db, savepoints: false)
            } catch is PartiallyWritten where batches.count > 1 {
                // A batch failed halfway, which a savepoint per batch contains: commit again
                // that way, from scratch (the failed transaction was rolled back).
                results = try Self.commit(batches, in: db, savepoints: true)
            }
        } catch {
            // The shared transaction did not commit: nothing of the group is stored.
            let failure = (error as? PartiallyWritten)?.underlying ?? error
            results = batches.map { _ in .failure(failure) }
        }
        var offset = 0
        for pending in group {
            let own = results[offset..<offset + pending.batches.count]
            offset += pending.batches.count
            pending.continuation.resume(
                returning: own.map { $0.mapError { Self.mapped($0, path: path, configuration: self.configuration) } })
        }
    }

    /// Commits the batches in one transaction. A batch whose checks fail writes nothing and
    /// fails alone. Without savepoints, a batch that fails after writing
    /// (``PartiallyWritten``) rolls the whole transaction back and is rethrown; with a
    /// savepoint per batch, it is rolled back alone.
    private static func commit(_ batches: [WriteBatch], in db: Database, savepoints: Bool) throws -> [Result<CommitOutcome, any Error>] {
        var results: [Result<CommitOutcome, any Error>] = []
        results.reserveCapacity(batches.count)
        try db.inTransaction(.immediate) {
            let statements = try CommitStatements(db)
            var versions: [StreamID: Int64] = [:]
            for batch in batches {
                do {
                    if savepoints {
                        var outcome: CommitOutcome?
                        try db.inSavepoint {
                            outcome = try commit(batch, in: db, statements: statements, versions: &versions)
                            return .commit
                        }
                        guard let outcome else { preconditionFailure("a released savepoint has an outcome") }
                        results.append(.success(outcome))
                    } else {
                        results.append(.success(try commit(batch, in: db, statements: statements, versions: &versions)))
                    }
                } catch let error as PartiallyWritten where !savepoints {
                    throw error
                } catch {
                    results.append(.failure((error as? PartiallyWritten)?.underlying ?? error))
                    // Some SQLite errors (I/O, disk full) abort the whole transaction.
                    guard db.isInsideTransaction else { throw error }
                }
            }
            return .commit
        }
        return results
    }
}

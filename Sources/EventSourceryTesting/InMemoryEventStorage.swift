public import EventSourcery
public import Foundation
import NIOConcurrencyHelpers

/// An event storage that keeps everything in memory, for unit tests of code built on
/// ``EventStore``.
///
/// It behaves like the database backends (optimistic concurrency, global order, outbox,
/// inbox, snapshots, checkpoints) and passes the same conformance suite, but keeps
/// nothing when the process ends.
public final class InMemoryEventStorage: EventStorage {
    private struct OutboxRow {
        var id: Int64
        var position: Int64
        var state: OutboxEntry.State
        var attempts: Int
        var lastError: String?
        var nextAttemptAt: Date?
        var leasedUntil: Date?
        var publishedAt: Date?
    }

    private struct CommandRow {
        var entry: CommandOutboxEntry
        var leasedUntil: Date?
        var sentAt: Date?
    }

    private struct State {
        var events: [RecordedEvent] = []
        var streams: [StreamID: [Int]] = [:]
        var eventIDs: Set<UUID> = []
        var outbox: [OutboxRow] = []
        var lastOutboxID: Int64 = 0
        var inbox: [InboxEntry: Date] = [:]  // entry → processed at
        var snapshots: [StreamID: Snapshot] = [:]
        var checkpoints: [String: ProjectionCheckpoint] = [:]
        var held: [HeldEvent] = []
        var lastHeldNumber: Int64 = 0
        var commands: [CommandRow] = []

        func version(of stream: StreamID) -> Int64 { Int64(streams[stream]?.count ?? 0) }

        func entry(_ row: OutboxRow) -> OutboxEntry {
            OutboxEntry(
                id: row.id, event: events[Int(row.position) - 1], state: row.state,
                attempts: row.attempts, lastError: row.lastError, nextAttemptAt: row.nextAttemptAt
            )
        }
    }

    private let state = NIOLockedValueBox(State())
    private let outboxChanged = ChangeSignal()

    /// Creates an empty storage.
    public init() {}

    public func commit(_ batch: WriteBatch) async throws -> CommitOutcome {
        let outcome = try commitLocked(batch)
        if case .committed = outcome, batch.appends.contains(where: \.publishes) || !batch.commands.isEmpty {
            outboxChanged.signal()
        }
        return outcome
    }

    public func waitForOutboxChange(timeout: Duration) async {
        _ = await outboxChanged.wait(timeout: timeout)
    }

    private func commitLocked(_ batch: WriteBatch) throws -> CommitOutcome {
        try state.withLockedValue { state in
            if let inbox = batch.inboxEntry, state.inbox[inbox] != nil { return .alreadyProcessed }
            // Validate everything first so a failing batch writes nothing.
            var versions: [StreamID: Int64] = [:]
            var newIDs: Set<UUID> = []
            for append in batch.appends {
                let actual = versions[append.streamID] ?? state.version(of: append.streamID)
                guard append.expectedVersion.isSatisfied(byActualVersion: actual) else {
                    throw EventStoreError.conflict(stream: append.streamID, expected: append.expectedVersion, actual: actual)
                }
                for event in append.events {
                    guard !state.eventIDs.contains(event.id), newIDs.insert(event.id).inserted else {
                        throw EventStoreError.duplicateEvent(event.id, stream: append.streamID)
                    }
                }
                versions[append.streamID] = actual + Int64(append.events.count)
            }
            var commandIDs: Set<UUID> = []
            for command in batch.commands {
                guard commandIDs.insert(command.id).inserted, !state.commands.contains(where: { $0.entry.command.id == command.id }) else {
                    throw EventStoreError.duplicateCommand(command.id)
                }
            }
            var recorded: [RecordedEvent] = []
            for append in batch.appends {
                for event in append.events {
                    let position = Int64(state.events.count + 1)
                    let version = state.version(of: append.streamID) + 1
                    let record = RecordedEvent(streamID: append.streamID, streamVersion: version, position: position, event: event)
                    state.events.append(record)
                    state.streams[append.streamID, default: []].append(state.events.count - 1)
                    state.eventIDs.insert(event.id)
                    if append.publishes {
                        state.lastOutboxID += 1
                        state.outbox.append(OutboxRow(id: state.lastOutboxID, position: position, state: .pending, attempts: 0))
                    }
                    recorded.append(record)
                }
            }
            if let inbox = batch.inboxEntry { state.inbox[inbox] = Date() }
            if let checkpoint = batch.checkpoint { state.checkpoints[checkpoint.name] = checkpoint }
            for snapshot in batch.snapshots { state.snapshots[snapshot.streamID] = snapshot }
            state.commands += batch.commands.map { CommandRow(entry: CommandOutboxEntry(command: $0, state: .pending)) }
            let cancelled = Set(batch.cancelledCommands)
            for index in state.commands.indices
            where state.commands[index].entry.state == .pending && cancelled.contains(state.commands[index].entry.command.id) {
                state.commands[index].entry.state = .cancelled
            }
            return .committed(recorded)
        }
    }

    public func streamVersion(_ stream: StreamID) async throws -> Int64 {
        state.withLockedValue { $0.version(of: stream) }
    }

    public func readStream(_ stream: StreamID, fromVersion: Int64, upToVersion: Int64?, createdUpTo: Date?) async throws -> [RecordedEvent]
    {
        state.withLockedValue { state in
            (state.streams[stream] ?? []).map { state.events[$0] }.filter { event in
                event.streamVersion >= fromVersion
                    && event.streamVersion <= (upToVersion ?? .max)
                    && createdUpTo.map { event.event.createdAt <= $0 } ?? true
            }
        }
    }

    public func readAll(after position: Int64, limit: Int) async throws -> [RecordedEvent] {
        state.withLockedValue { state in
            let start = Int(max(position, 0))
            guard start < state.events.count else { return [] }
            return Array(state.events[start..<min(start + limit, state.events.count)])
        }
    }

    public func readFlow(correlationID: UUID) async throws -> [RecordedEvent] {
        state.withLockedValue { state in
            state.events.filter { $0.event.metadata.correlationID.map { $0 == correlationID } ?? ($0.event.id == correlationID) }
        }
    }

    public func headPosition() async throws -> Int64 {
        state.withLockedValue { Int64($0.events.count) }
    }

    public func latestSnapshot(of stream: StreamID) async throws -> Snapshot? {
        state.withLockedValue { $0.snapshots[stream] }
    }

    public func checkpoint(named name: String) async throws -> ProjectionCheckpoint? {
        state.withLockedValue { $0.checkpoints[name] }
    }

    public func resetCheckpoint(named name: String) async throws {
        _ = state.withLockedValue { $0.checkpoints.removeValue(forKey: name) }
    }

    public func deleteInboxEntries(processedUpTo date: Date) async throws -> Int {
        state.withLockedValue { state in
            let before = state.inbox.count
            state.inbox = state.inbox.filter { $0.value > date }
            return before - state.inbox.count
        }
    }

    public func sizes() async throws -> StoreSizes {
        let outbox = try await outboxCounts()
        return state.withLockedValue { state in
            StoreSizes(events: state.events.count, outbox: outbox, inboxEntries: state.inbox.count, heldEvents: state.held.count)
        }
    }

    public func isProcessed(consumer: String, eventID: UUID) async throws -> Bool {
        state.withLockedValue { $0.inbox[InboxEntry(consumer: consumer, eventID: eventID)] != nil }
    }

    public func claimOutboxEntries(limit: Int, now: Date, leaseDuration: TimeInterval) async throws -> [OutboxEntry] {
        state.withLockedValue { state in
            var blockedStreams: Set<StreamID> = []
            var entries: [OutboxEntry] = []
            for index in state.outbox.indices where state.outbox[index].state != .published {
                let row = state.outbox[index]
                let stream = state.events[Int(row.position) - 1].streamID
                guard !blockedStreams.contains(stream) else { continue }
                let waiting = row.nextAttemptAt.map { $0 > now } ?? false
                let leased = row.leasedUntil.map { $0 > now } ?? false
                if row.state == .parked || waiting || leased {
                    blockedStreams.insert(stream)
                    continue
                }
                if leaseDuration > 0 { state.outbox[index].leasedUntil = now.addingTimeInterval(leaseDuration) }
                entries.append(state.entry(row))
                if entries.count == limit { break }
            }
            return entries
        }
    }

    public func markPublished(_ entryIDs: [Int64], at date: Date) async throws {
        let ids = Set(entryIDs)
        state.withLockedValue { state in
            for index in state.outbox.indices where ids.contains(state.outbox[index].id) && state.outbox[index].state != .published {
                state.outbox[index].state = .published
                state.outbox[index].publishedAt = date
                state.outbox[index].leasedUntil = nil
            }
        }
    }

    public func releaseOutboxEntries(_ entryIDs: [Int64]) async throws {
        let ids = Set(entryIDs)
        state.withLockedValue { state in
            for index in state.outbox.indices where ids.contains(state.outbox[index].id) && state.outbox[index].state == .pending {
                state.outbox[index].leasedUntil = nil
            }
        }
    }

    public func renewOutboxLeases(_ entryIDs: [Int64], until: Date) async throws {
        let ids = Set(entryIDs)
        state.withLockedValue { state in
            for index in state.outbox.indices
            where ids.contains(state.outbox[index].id) && state.outbox[index].state == .pending && state.outbox[index].leasedUntil != nil {
                state.outbox[index].leasedUntil = until
            }
        }
    }

    public func recordFailedAttempt(_ entryID: Int64, error: String, nextAttemptAt: Date, attemptLimit: Int) async throws -> OutboxEntry? {
        state.withLockedValue { state in
            guard let index = state.outbox.firstIndex(where: { $0.id == entryID && $0.state == .pending }) else { return nil }
            state.outbox[index].attempts += 1
            state.outbox[index].lastError = error
            state.outbox[index].nextAttemptAt = nextAttemptAt
            state.outbox[index].leasedUntil = nil
            if state.outbox[index].attempts >= attemptLimit { state.outbox[index].state = .parked }
            return state.entry(state.outbox[index])
        }
    }

    public func parkedOutboxEntries(limit: Int) async throws -> [OutboxEntry] {
        state.withLockedValue { state in
            state.outbox.filter { $0.state == .parked }.prefix(limit).map { state.entry($0) }
        }
    }

    public func requeueParked(_ entryIDs: [Int64]) async throws -> Int {
        let ids = Set(entryIDs)
        defer { outboxChanged.signal() }
        return state.withLockedValue { state in
            var count = 0
            for index in state.outbox.indices where ids.contains(state.outbox[index].id) && state.outbox[index].state == .parked {
                state.outbox[index].state = .pending
                state.outbox[index].attempts = 0
                state.outbox[index].nextAttemptAt = nil
                state.outbox[index].leasedUntil = nil
                count += 1
            }
            return count
        }
    }

    public func deletePublishedOutboxEntries(publishedUpTo date: Date) async throws -> Int {
        state.withLockedValue { state in
            let before = state.outbox.count
            state.outbox.removeAll { $0.state == .published && ($0.publishedAt.map { $0 <= date } ?? false) }
            return before - state.outbox.count
        }
    }

    public func outboxCounts() async throws -> OutboxCounts {
        state.withLockedValue { state in
            OutboxCounts(
                pending: state.outbox.count { $0.state == .pending },
                parked: state.outbox.count { $0.state == .parked },
                published: state.outbox.count { $0.state == .published }
            )
        }
    }

    public func claimCommands(limit: Int, now: Date, leaseDuration: TimeInterval) async throws -> [CommandOutboxEntry] {
        state.withLockedValue { state in
            let due = state.commands.indices.filter { index in
                let row = state.commands[index]
                return row.entry.state == .pending && row.entry.command.dueAt <= now && (row.entry.nextAttemptAt.map { $0 <= now } ?? true)
                    && (row.leasedUntil.map { $0 <= now } ?? true)
            }
            .sorted { (state.commands[$0].entry.command.dueAt, $0) < (state.commands[$1].entry.command.dueAt, $1) }
            .prefix(limit)
            if leaseDuration > 0 {
                for index in due { state.commands[index].leasedUntil = now.addingTimeInterval(leaseDuration) }
            }
            return due.map { state.commands[$0].entry }
        }
    }

    public func markCommandsSent(_ commandIDs: [UUID], at date: Date) async throws {
        let ids = Set(commandIDs)
        state.withLockedValue { state in
            for index in state.commands.indices
            where ids.contains(state.commands[index].entry.command.id) && state.commands[index].entry.state == .pending {
                state.commands[index].entry.state = .sent
                state.commands[index].sentAt = date
                state.commands[index].leasedUntil = nil
            }
        }
    }

    public func recordFailedCommandAttempt(
        _ commandID: UUID, error: String, nextAttemptAt: Date, attemptLimit: Int
    ) async throws
        -> CommandOutboxEntry?
    {
        state.withLockedValue { state in
            guard let index = state.commands.firstIndex(where: { $0.entry.command.id == commandID && $0.entry.state == .pending }) else {
                return nil
            }
            state.commands[index].entry.attempts += 1
            state.commands[index].entry.lastError = error
            state.commands[index].entry.nextAttemptAt = nextAttemptAt
            state.commands[index].leasedUntil = nil
            if state.commands[index].entry.attempts >= attemptLimit { state.commands[index].entry.state = .parked }
            return state.commands[index].entry
        }
    }

    public func requeueParkedCommands(_ commandIDs: [UUID]) async throws -> Int {
        let ids = Set(commandIDs)
        defer { outboxChanged.signal() }
        return state.withLockedValue { state in
            var count = 0
            for index in state.commands.indices
            where ids.contains(state.commands[index].entry.command.id) && state.commands[index].entry.state == .parked {
                state.commands[index].entry.state = .pending
                state.commands[index].entry.attempts = 0
                state.commands[index].entry.nextAttemptAt = nil
                state.commands[index].leasedUntil = nil
                count += 1
            }
            return count
        }
    }

    public func commandOutboxEntries(in states: Set<CommandOutboxEntry.State>, limit: Int) async throws -> [CommandOutboxEntry] {
        state.withLockedValue { state in
            let entries = state.commands.enumerated().filter { states.contains($0.element.entry.state) }
                .sorted { ($0.element.entry.command.dueAt, $0.offset) < ($1.element.entry.command.dueAt, $1.offset) }
            return entries.prefix(limit).map(\.element.entry)
        }
    }

    public func holdEvent(_ event: HeldEvent, onlyBehindOthers: Bool) async throws -> HoldOutcome {
        state.withLockedValue { state in
            if state.held.contains(where: { $0.sequence.consumer == event.sequence.consumer && $0.event.id == event.event.id }) {
                return .alreadyHeld
            }
            if onlyBehindOthers, !state.held.contains(where: { $0.sequence == event.sequence }) { return .notHeld }
            state.lastHeldNumber += 1
            var held = event
            held.sequenceNumber = state.lastHeldNumber
            state.held.append(held)
            return .held(held.sequenceNumber)
        }
    }

    public func heldEvents(consumer: String, sequence: HeldEvent.Sequence?) async throws -> [HeldEvent] {
        state.withLockedValue { state in
            state.held.filter { event in event.sequence.consumer == consumer && (sequence.map { event.sequence == $0 } ?? true) }
        }
    }

    public func updateHeldEvent(_ event: HeldEvent) async throws -> Bool {
        state.withLockedValue { state in
            guard let index = state.held.firstIndex(where: { $0.sequenceNumber == event.sequenceNumber }) else { return false }
            state.held[index].attempts = event.attempts
            state.held[index].lastError = event.lastError
            state.held[index].nextAttemptAt = event.nextAttemptAt
            state.held[index].state = event.state
            return true
        }
    }

    public func releaseHeldEvent(sequenceNumber: Int64) async throws -> Bool {
        state.withLockedValue { state in
            guard let index = state.held.firstIndex(where: { $0.sequenceNumber == sequenceNumber }) else { return false }
            state.held.remove(at: index)
            return true
        }
    }
}

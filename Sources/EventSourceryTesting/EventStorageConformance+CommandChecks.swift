import EventSourcery
import Foundation
import Testing

private typealias F = ConformanceFixtures

/// The command outbox (commands and deadlines) and a process manager on top of it.
extension EventStorageConformance.Checks {
    private func statement(_ account: String, id: UUID = .timeOrdered()) -> CommandEnvelope {
        CommandEnvelope(F.SendStatement(account: account), id: id)
    }

    private func pending() async throws -> [CommandOutboxEntry] {
        try await storage.commandOutboxEntries(in: [.pending], limit: 100)
    }

    func commandsCommitWithTheirBatch() async throws {
        var batch = WriteBatch()
        try batch.publish([EventEnvelope(F.AccountOpened(owner: "ann"))], to: "account-1", expectedVersion: .noStream)
        try batch.send(statement("1"), to: "statements")
        try await store.commit(batch)
        let entries = try await pending()
        #expect(entries.map(\.command.typeName) == ["SendStatement"])
        #expect(entries.map(\.command.target) == ["statements"])
        #expect(entries.map(\.attempts) == [0])
        #expect(try JSONDecoder().decode(F.SendStatement.self, from: entries[0].command.payload) == F.SendStatement(account: "1"))

        // A batch that fails its version check sends nothing.
        var conflicting = WriteBatch()
        try conflicting.append([EventEnvelope(F.Deposited(amount: 1))], to: "account-1", expectedVersion: .noStream)
        try conflicting.send(statement("2"), to: "statements")
        await #expect(throws: EventStoreError.self) { try await store.commit(conflicting) }
        #expect(try await pending().count == 1)

        // A command id is unique.
        var duplicate = WriteBatch()
        try duplicate.send(CommandEnvelope(F.SendStatement(account: "3"), id: entries[0].command.id), to: "statements")
        let error = await #expect(throws: EventStoreError.self) { try await store.commit(duplicate) }
        #expect(error?.code == .duplicateEventID)
        #expect(try await pending().count == 1)
    }

    func commandsAreClaimedWhenDue() async throws {
        let now = Date()
        var batch = WriteBatch()
        let later = statement("later")
        let first = statement("first")
        let second = statement("second")
        try batch.send(later, to: "statements", at: now.addingTimeInterval(60))
        try batch.send(first, to: "statements")
        try batch.send(second, to: "statements")
        try await store.commit(batch)
        let dueNow = try await storage.claimCommands(limit: 10, now: now.addingTimeInterval(1), leaseDuration: 0)
        #expect(dueNow.map(\.command.id) == [first.id, second.id], "sent order; the deadline is not due yet")
        let dueLater = try await storage.claimCommands(limit: 10, now: now.addingTimeInterval(61), leaseDuration: 0)
        #expect(dueLater.map(\.command.id) == [first.id, second.id, later.id], "due order")
        #expect(try await storage.claimCommands(limit: 1, now: now.addingTimeInterval(61), leaseDuration: 0).count == 1)
        #expect(try await pending().map(\.command.id) == [first.id, second.id, later.id])
    }

    func commandLeasesAndSentMarks() async throws {
        var batch = WriteBatch()
        let commands = [statement("1"), statement("2")]
        for command in commands { try batch.send(command, to: "statements") }
        try await store.commit(batch)
        let now = Date().addingTimeInterval(1)
        let firstRelay = try await storage.claimCommands(limit: 1, now: now, leaseDuration: 30)
        #expect(firstRelay.map(\.command.id) == [commands[0].id])
        let secondRelay = try await storage.claimCommands(limit: 10, now: now, leaseDuration: 30)
        #expect(secondRelay.map(\.command.id) == [commands[1].id], "a leased command is not handed out again")
        #expect(try await storage.claimCommands(limit: 10, now: now, leaseDuration: 30).isEmpty)

        try await storage.markCommandsSent([commands[0].id], at: now)
        // The second relay died: its lease expires and the command is handed out again.
        let expired = try await storage.claimCommands(limit: 10, now: now.addingTimeInterval(31), leaseDuration: 30)
        #expect(expired.map(\.command.id) == [commands[1].id])
        #expect(try await storage.commandOutboxEntries(in: [.sent], limit: 10).map(\.command.id) == [commands[0].id])
    }

    func commandFailuresParkAtTheLimit() async throws {
        var batch = WriteBatch()
        let command = statement("1")
        try batch.send(command, to: "statements")
        try await store.commit(batch)
        let now = Date().addingTimeInterval(1)
        let retried = try await storage.recordFailedCommandAttempt(
            command.id, error: "nacked", nextAttemptAt: now.addingTimeInterval(10), attemptLimit: 2)
        #expect(retried?.state == .pending)
        #expect(retried?.attempts == 1)
        #expect(try await storage.claimCommands(limit: 10, now: now, leaseDuration: 0).isEmpty, "waits for its next attempt")
        #expect(try await storage.claimCommands(limit: 10, now: now.addingTimeInterval(10), leaseDuration: 0).count == 1)
        let parked = try await storage.recordFailedCommandAttempt(command.id, error: "returned", nextAttemptAt: now, attemptLimit: 2)
        #expect(parked?.state == .parked)
        #expect(parked?.lastError == "returned")
        #expect(try await storage.recordFailedCommandAttempt(command.id, error: "again", nextAttemptAt: now, attemptLimit: 2) == nil)
        #expect(try await storage.claimCommands(limit: 10, now: now.addingTimeInterval(3600), leaseDuration: 0).isEmpty)
        #expect(try await storage.commandOutboxEntries(in: [.parked], limit: 10).map(\.attempts) == [2])

        #expect(try await storage.requeueParkedCommands([command.id, UUID()]) == 1)
        let requeued = try await storage.claimCommands(limit: 10, now: now, leaseDuration: 0)
        #expect(requeued.map(\.command.id) == [command.id])
        #expect(requeued.map(\.attempts) == [0])
        #expect(try await storage.requeueParkedCommands([command.id]) == 0, "only parked commands are requeued")
    }

    func pendingCommandsCanBeCancelled() async throws {
        let now = Date()
        var batch = WriteBatch()
        let deadline = statement("deadline")
        let sent = statement("sent")
        try batch.send(deadline, to: "statements", at: now.addingTimeInterval(60))
        try batch.send(sent, to: "statements")
        try await store.commit(batch)
        try await storage.markCommandsSent([sent.id], at: now)

        var cancelling = WriteBatch()
        try cancelling.append([EventEnvelope(F.Deposited(amount: 1))], to: "account-1")
        cancelling.cancelCommand(deadline.id)
        cancelling.cancelCommand(sent.id)
        try await store.commit(cancelling)
        #expect(try await storage.claimCommands(limit: 10, now: now.addingTimeInterval(61), leaseDuration: 0).isEmpty)
        #expect(try await storage.commandOutboxEntries(in: [.cancelled], limit: 10).map(\.command.id) == [deadline.id])
        #expect(try await storage.commandOutboxEntries(in: [.sent], limit: 10).map(\.command.id) == [sent.id], "a sent command stays sent")
    }

    func processManagerRunsOncePerInput() async throws {
        let runner = ProcessManagerRunner(F.Reminders(), store: store, context: "accounts")
        let opened = EventEnvelope(F.AccountOpened(owner: "ann"))
        let handle: (EventEnvelope) async throws -> InboxOutcome = { event in
            try await store.processOnce(consumer: "accounts.reminders", eventID: event.id) { batch in
                try await runner.handle(event, in: &batch)
            }
        }
        #expect(try await handle(opened).wasProcessed)
        #expect(try await !handle(opened).wasProcessed, "a redelivered event changes nothing")
        let sent = try await pending()
        #expect(sent.map(\.command.typeName) == ["SendStatement", "DeadlineDue"])
        #expect(sent.map(\.command.target) == ["statements", "accounts"])
        #expect(sent.allSatisfy { $0.command.metadata.causationID == opened.id })

        // The deadline comes due: delivered once, fired once.
        let registry = CommandRegistry([DeadlineDue.self])
        let entry = sent[1].command
        let command = try registry.decode(
            typeName: entry.typeName, id: entry.id, createdAt: entry.createdAt, metadata: entry.metadata, payload: entry.payload)
        let due = try #require(command.as(DeadlineDue.self))
        // JSON dates carry whole seconds.
        #expect(abs(due.deadline.dueAt.timeIntervalSince(opened.createdAt.addingTimeInterval(60))) < 1)
        #expect(
            abs(entry.dueAt.timeIntervalSince(opened.createdAt.addingTimeInterval(60))) < 0.001,
            "the outbox keeps the due time (PostgreSQL: µs)")
        let fire: () async throws -> InboxOutcome = {
            try await store.processOnce(consumer: "accounts.commands", eventID: command.id) { batch in
                try await runner.handle(due, command: command, in: &batch)
            }
        }
        #expect(try await fire().wasProcessed)
        #expect(try await !fire().wasProcessed)
        let flow = try await store.load(runner.stream(of: "ann")).map(\.envelope.typeName)
        #expect(flow == ["AccountOpened", "DeadlineChanged", "DeadlineChanged", "Deposited"])
        #expect(try await runner.load("ann").deadlines.isEmpty)

        // Another flow cancels its deadline: the outbox entry is cancelled, and a copy that was
        // already on its way finds no live deadline.
        let bobOpened = EventEnvelope(F.AccountOpened(owner: "bob"))
        _ = try await handle(bobOpened)
        let bobDeadline = try #require(try await runner.load("bob").deadlines["reminder"])
        _ = try await handle(EventEnvelope(F.AccountOpened(owner: "bob")))
        #expect(try await storage.commandOutboxEntries(in: [.cancelled], limit: 10).map(\.command.id) == [bobDeadline.id])
        var late = WriteBatch()
        let lateDue = DeadlineDue(processManager: F.Reminders.category, flowID: "bob", deadline: bobDeadline)
        let step = try await runner.handle(lateDue, command: CommandEnvelope(lateDue, id: bobDeadline.id), in: &late)
        #expect(step?.isStaleDeadline == true)
        #expect(late.isEmpty)
    }
}

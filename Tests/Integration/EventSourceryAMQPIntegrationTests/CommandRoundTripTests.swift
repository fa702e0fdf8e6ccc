import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import Foundation
import Testing

/// A command sent by one context, through its outbox, the relay and the broker, handled once
/// by another context's command consumer; and a deadline that survives relay restarts.
@Suite(.timeLimit(.minutes(2)), .requiresBroker)
struct CommandRoundTripTests {
    struct Charge: Command, Equatable {
        var account: String
        var amount: Int
    }

    struct Charged: Event, Equatable {
        var amount: Int
    }

    struct NotPositive: CommandRefusal {
        var amount: Int
        var reason: String { "the amount \(amount) is not positive" }
    }

    struct Wallet: Aggregate {
        static let category = "wallet"
        let id: String
        var charged = 0
        var uncommittedEvents: [any Event] = []
        init(id: String) { self.id = id }
        mutating func apply(_ event: any Event) {
            if let charged = event as? Charged { self.charged += charged.amount }
        }
        mutating func charge(_ amount: Int) throws {
            guard amount > 0 else { throw NotPositive(amount: amount) }
            record(Charged(amount: amount))
        }
    }

    /// Two contexts with stores of their own, on one connection.
    struct Contexts {
        let sender: String
        let receiver: String
        let directory: URL
        let senderStorage: SQLiteEventStorage
        let senderStore: EventStore
        let receiverStore: EventStore
        let connection: AMQPConnection

        init() async throws {
            let suffix = UUID().uuidString.prefix(8).lowercased()
            sender = "cmdsend-\(suffix)"
            receiver = "cmdrecv-\(suffix)"
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("commands-\(suffix)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            senderStorage = try SQLiteEventStorage(path: directory.appendingPathComponent("sender.sqlite").path)
            senderStore = EventStore(storage: senderStorage, registry: EventRegistry())
            receiverStore = EventStore(
                storage: try SQLiteEventStorage(path: directory.appendingPathComponent("receiver.sqlite").path),
                registry: EventRegistry([Charged.self, CommandRejected.self]))
            connection = try await TestBroker.connect()
            try await ContextTopology(ContextDescription(name: receiver, deliveryLimit: 2, acceptsCommands: true)).declare(on: connection)
            try await ContextTopology(ContextDescription(name: sender, commandTargets: [receiver])).declare(on: connection)
        }

        func relay() -> OutboxRelay {
            OutboxRelay(
                storage: senderStorage, publisher: AMQPPublisher(connection: connection),
                configuration: OutboxRelay.Configuration(context: sender, idlePollInterval: .milliseconds(100)), logger: TestBroker.logger)
        }

        func consumer() -> CommandConsumer {
            let wallets = Repository<Wallet>(store: receiverStore, saveMode: .publish)
            let charge = CommandHandler.aggregate(Charge.self, Wallet.self, repository: wallets, id: \.account) { command, wallet in
                try wallet.charge(command.amount)
            }
            return CommandConsumer(
                context: receiver, store: receiverStore, connection: connection, handlers: [charge], logger: TestBroker.logger)
        }

        func send(_ commands: [CommandEnvelope], at dueAt: Date? = nil) async throws {
            var batch = WriteBatch()
            for command in commands { try batch.send(command, to: receiver, at: dueAt) }
            try await senderStore.commit(batch)
        }

        func tearDown() async {
            _ = try? await connection.deleteQueue(CommandMessage.queue(for: receiver))
            _ = try? await connection.deleteQueue(ContextTopology.deadLetterQueue(for: receiver))
            _ = try? await connection.deleteQueue(ContextTopology.inboxQueue(for: receiver))
            _ = try? await connection.deleteQueue(ContextTopology.inboxQueue(for: sender))
            _ = try? await connection.deleteQueue(ContextTopology.deadLetterQueue(for: sender))
            for context in [sender, receiver] {
                try? await connection.deleteExchange(CommandMessage.exchange(for: context))
                try? await connection.deleteExchange(EventMessage.exchange(for: context))
                try? await connection.deleteExchange(ContextTopology.deadLetterExchange(for: context))
            }
            await connection.close()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    @Test func aCommandIsHandledOnceAndARefusalIsRecorded() async throws {
        let contexts = try await Contexts()
        defer { Task { await contexts.tearDown() } }
        let accepted = CommandEnvelope(Charge(account: "a", amount: 5))
        let refused = CommandEnvelope(Charge(account: "b", amount: 0))
        try await contexts.send([accepted, refused])
        let consumer = contexts.consumer()
        let task = Task { try await consumer.run() }
        defer { task.cancel() }
        let statistics = try await contexts.relay().runOnce()
        #expect(statistics.commandsSent == 2)

        // The same command published again (a lost confirm): the inbox drops it.
        let duplicate = try await contexts.senderStorage.commandOutboxEntries(in: [.sent], limit: 10).first { $0.command.id == accepted.id }
        let outcome = try await AMQPPublisher(connection: contexts.connection).publish(
            CommandMessage.outgoing(try #require(duplicate).command, sender: contexts.sender))
        #expect(outcome.isConfirmed)

        try await waitUntil(timeout: .seconds(20)) {
            let rejected = try await contexts.receiverStore.streamExists(CommandRejected.stream(for: refused.id))
            let waiting = try await contexts.connection.queueState(CommandMessage.queue(for: contexts.receiver)).messageCount
            return rejected && waiting == 0
        }
        let wallet = try await contexts.receiverStore.load("wallet-a")
        #expect(wallet.map(\.envelope.typeName) == ["Charged"], "handled once")
        #expect(wallet.first?.envelope.metadata.causationID == accepted.id)
        #expect(wallet.first?.envelope.metadata.correlationID == accepted.metadata.correlationID)
        let rejection = try await contexts.receiverStore.load(CommandRejected.stream(for: refused.id))
        #expect(
            rejection.map { $0.envelope.as(CommandRejected.self) } == [
                CommandRejected(
                    commandID: refused.id, commandType: "Charge", sender: contexts.sender, reason: "the amount 0 is not positive")
            ])
        #expect(try await contexts.receiverStore.streamExists("wallet-b") == false)
        #expect(try await contexts.receiverStore.storage.outboxCounts().pending == 2, "the outcome events are published")
    }

    @Test func anUnknownCommandTypeIsDeadLetteredWithItsReason() async throws {
        let contexts = try await Contexts()
        defer { Task { await contexts.tearDown() } }
        struct Unknown: Command { var note: String }
        try await contexts.send([CommandEnvelope(Unknown(note: "nobody handles me"))])
        let consumer = contexts.consumer()
        let task = Task { try await consumer.run() }
        defer { task.cancel() }
        #expect(try await contexts.relay().runOnce().commandsSent == 1)
        let admin = ContextAdmin(context: contexts.receiver, connection: contexts.connection)
        var dead: [DeadLetter] = []
        try await waitUntil(timeout: .seconds(20)) {
            dead = try await admin.deadLetters()
            return !dead.isEmpty
        }
        #expect(dead.map(\.reason) == ["unknownCommandType"])
        #expect(dead.first?.type == "Unknown")
    }

    @Test func aFailingHandlerIsRetriedThenDeadLetteredByTheQueuesDeliveryLimit() async throws {
        let contexts = try await Contexts()
        defer { Task { await contexts.tearDown() } }
        struct StoreDown: Error {}
        let attempts = Counter()
        let failing = CommandHandler(Charge.self) { _, _, _ in
            _ = attempts.next()
            throw StoreDown()
        }
        let consumer = CommandConsumer(
            context: contexts.receiver, store: contexts.receiverStore, connection: contexts.connection, handlers: [failing],
            logger: TestBroker.logger)
        let task = Task { try await consumer.run() }
        defer { task.cancel() }
        let command = CommandEnvelope(Charge(account: "f", amount: 1))
        try await contexts.send([command])
        #expect(try await contexts.relay().runOnce().commandsSent == 1)
        let admin = ContextAdmin(context: contexts.receiver, connection: contexts.connection)
        var dead: [DeadLetter] = []
        try await waitUntil(timeout: .seconds(20)) {
            dead = try await admin.deadLetters()
            return !dead.isEmpty
        }
        #expect(dead.map(\.messageID) == [command.id.uuidString.lowercased()])
        #expect(dead.map(\.reason) == ["delivery_limit"])
        #expect(attempts.current == 3, "the first delivery and 2 returns: x-delivery-limit counts the unsuccessful ones")
        #expect(try await contexts.receiverStore.isProcessedCommand(command.id, consumer: consumer) == false, "nothing committed")
    }

    @Test func aDeadlineFiresOnceAcrossRelayRestarts() async throws {
        let contexts = try await Contexts()
        defer { Task { await contexts.tearDown() } }
        let consumer = contexts.consumer()
        let consumerTask = Task { try await consumer.run() }
        defer { consumerTask.cancel() }
        let deadline = CommandEnvelope(Charge(account: "d", amount: 3))
        let dueAt = Date().addingTimeInterval(1.5)
        try await contexts.send([deadline], at: dueAt)

        // The first relay runs and stops before the deadline is due: nothing is sent.
        let first = Task { try await contexts.relay().run() }
        try await Task.sleep(for: .milliseconds(300))
        first.cancel()
        _ = await first.result
        #expect(try await contexts.senderStorage.commandOutboxEntries(in: [.pending], limit: 10).count == 1)

        // A new relay (the restart) delivers it when due, once.
        let second = Task { try await contexts.relay().run() }
        try await waitUntil(timeout: .seconds(20)) { try await contexts.receiverStore.streamExists("wallet-d") }
        #expect(Date() >= dueAt, "not before it was due")
        // Marked sent when its confirm arrives, which can be after the receiver handled it.
        try await waitUntil(timeout: .seconds(10)) {
            try await !contexts.senderStorage.commandOutboxEntries(in: [.sent], limit: 10).isEmpty
        }
        second.cancel()
        _ = await second.result
        let third = Task { try await contexts.relay().run() }
        try await Task.sleep(for: .milliseconds(500))
        third.cancel()
        _ = await third.result
        #expect(try await contexts.senderStorage.commandOutboxEntries(in: [.sent], limit: 10).map(\.command.id) == [deadline.id])
        #expect(try await contexts.receiverStore.load("wallet-d").count == 1, "fired exactly once")
    }
}

extension EventStore {
    fileprivate func isProcessedCommand(_ id: UUID, consumer: CommandConsumer) async throws -> Bool {
        try await storage.isProcessed(consumer: consumer.inboxConsumer, eventID: id)
    }
}

import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import Foundation
import Testing

/// A process manager fed by a context consumer schedules deadlines that the relay delivers
/// to the context's own command queue: each fires once, across relay restarts and a
/// duplicate delivery, and a cancelled one never fires.
@Suite(.timeLimit(.minutes(2)), .requiresBroker)
struct ProcessManagerDeadlineTests {
    struct TimedOut: Event, Equatable {
        var index: Int
    }

    /// One flow per item: the first count schedules `timeout` a second later, a second count
    /// cancels it, the deadline records `TimedOut`.
    struct Watch: ProcessManager {
        static let category = "watch"
        var initialState: Int { 0 }

        func flowID(for event: EventEnvelope) -> String? { event.as(ItemCounted.self).map { "\($0.index)" } }

        func react(to input: ProcessInput, in counts: Int) -> ProcessReaction {
            var reaction = ProcessReaction()
            if let counted = input.event(ItemCounted.self) {
                reaction.record(counted)
                if counts == 0 {
                    reaction.schedule("timeout", after: .seconds(1))
                } else {
                    reaction.cancel("timeout")
                }
            } else if case .deadline = input {
                reaction.record(TimedOut(index: -1))
            }
            return reaction
        }

        func apply(_ event: any Event, to counts: inout Int) {
            if event is ItemCounted { counts += 1 }
        }
    }

    @Test func eachDeadlineFiresOnceAcrossRelayRestartsAndACancelledOneNever() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let store = EventStore(
            storage: fixture.storage,
            registry: EventRegistry([ItemCounted.self, TimedOut.self, HandlerFailed.self] + ProcessManagerRunner<Watch>.eventTypes))
        let runner = ProcessManagerRunner(Watch(), store: store, context: fixture.context)
        let events = ContextConsumer(
            connection: fixture.connection, store: store,
            handlers: [runner.eventHandler(name: "watch", subscriptions: [fixture.subscription])],
            configuration: fixture.configuration(), logger: TestBroker.logger)
        let eventTask = try await fixture.start(events)
        defer { eventTask.cancel() }
        try await ContextTopology(ContextDescription(name: fixture.context, acceptsCommands: true)).declare(on: fixture.connection)
        defer { Task { _ = try? await fixture.connection.deleteQueue(CommandMessage.queue(for: fixture.context)) } }
        let commands = CommandConsumer(
            context: fixture.context, store: store, connection: fixture.connection, handlers: [runner.deadlineHandler],
            logger: TestBroker.logger)
        let commandTask = Task { try await commands.run() }
        defer { commandTask.cancel() }
        let relay: @Sendable () -> OutboxRelay = {
            OutboxRelay(
                storage: fixture.storage, publisher: AMQPPublisher(connection: fixture.connection),
                configuration: OutboxRelay.Configuration(context: fixture.context, idlePollInterval: .milliseconds(100)),
                logger: TestBroker.logger)
        }

        try await fixture.publish([fixture.message(1), fixture.message(2), fixture.message(2)])
        try await waitUntil(timeout: .seconds(20)) {
            try await store.load(runner.stream(of: "2")).count == 4  // counted, scheduled, counted, cancelled
        }
        #expect(try await runner.load("1").deadlines.keys.sorted() == ["timeout"])
        #expect(try await runner.load("2").deadlines.isEmpty)
        #expect(try await fixture.storage.commandOutboxEntries(in: [.cancelled], limit: 10).count == 1)

        // A relay runs and stops before the deadline is due; a second one (the restart) sends it.
        let first = Task { try await relay().run() }
        try await Task.sleep(for: .milliseconds(200))
        first.cancel()
        _ = try? await first.value
        let second = Task { try await relay().run() }
        try await waitUntil(timeout: .seconds(20)) {
            try await store.load(runner.stream(of: "1")).contains { $0.envelope.typeName == "TimedOut" }
        }
        // The relay marks the deadline sent when its confirm arrives, which can be after the
        // handler already ran.
        try await waitUntil(timeout: .seconds(10)) {
            try await !fixture.storage.commandOutboxEntries(in: [.sent], limit: 10).isEmpty
        }
        second.cancel()
        _ = try? await second.value

        // The same deadline delivered again (a confirm lost before it was marked sent) changes nothing.
        let sent = try #require(try await fixture.storage.commandOutboxEntries(in: [.sent], limit: 10).first)
        #expect(try await fixture.publisher.publish(CommandMessage.outgoing(sent.command, sender: fixture.context)).isConfirmed)
        let third = Task { try await relay().run() }
        try await waitUntil(timeout: .seconds(10)) {
            try await fixture.messageCount(CommandMessage.queue(for: fixture.context)) == 0
        }
        try await Task.sleep(for: .milliseconds(300))
        third.cancel()
        _ = try? await third.value

        let flow1 = try await store.load(runner.stream(of: "1")).map(\.envelope.typeName)
        #expect(flow1 == ["ItemCounted", "DeadlineChanged", "DeadlineChanged", "TimedOut"], "fired exactly once")
        let flow2 = try await store.load(runner.stream(of: "2")).map(\.envelope.typeName)
        #expect(!flow2.contains("TimedOut"), "the cancelled deadline never fires")
        #expect(try await fixture.storage.commandOutboxEntries(in: [.sent], limit: 10).count == 1)
        #expect(try await fixture.storage.commandOutboxEntries(in: [.pending], limit: 10).isEmpty)
    }
}

@testable import EventSourceryRabbitMQ
import EventSourcery
import TestSupport
@testable import EventSourceryAMQP
import Foundation
import Testing

/// The command wire contract, the relay's decision per command, and the command topology,
/// without a broker.
struct CommandMessageTests {
    struct Charge: Command, Equatable {
        var orderID: String
        var amount: Int
    }

    private func delivery(_ message: OutgoingMessage, exchange: String? = nil, routingKey: String? = nil) -> Delivery {
        Delivery(
            body: message.body, properties: message.properties, exchange: exchange ?? message.exchange,
            routingKey: routingKey ?? message.routingKey, isRedelivered: false, deliveryTag: 1, consumerTag: "test", generation: 1)
    }

    private func encoded(
        _ command: Charge = Charge(orderID: "42", amount: 10), metadata: EventMetadata = EventMetadata()
    ) throws
        -> EncodedCommand
    {
        try CommandRegistry.encode(
            CommandEnvelope(command, createdAt: Date(timeIntervalSince1970: 1_700_000_000.5), metadata: metadata), to: "payment")
    }

    @Test func theOutgoingMessageFollowsTheContract() throws {
        let cause = UUID()
        let command = try encoded(metadata: EventMetadata(causationID: cause, traceContext: ["traceparent": "00-abc-def-01"]))
        let message = CommandMessage.outgoing(command, sender: "order")
        #expect(message.exchange == "payment.commands")
        #expect(message.routingKey == "payment.Charge")
        #expect(message.mandatory)
        #expect(message.properties.messageId == command.id.uuidString.lowercased())
        #expect(message.properties.type == "Charge")
        #expect(message.properties.appId == "order")
        #expect(message.properties.contentType == "application/json")
        #expect(message.properties.deliveryMode == .persistent)
        #expect(message.properties.timestamp == Date(timeIntervalSince1970: 1_700_000_000))
        #expect(message.properties.correlationId == command.id.uuidString.lowercased(), "a command starting a flow correlates to itself")
        #expect(message.properties.headers?[EventMessage.Header.causationID]?.stringValue == cause.uuidString.lowercased())
        #expect(message.properties.headers?[EventMessage.Header.traceParent]?.stringValue == "00-abc-def-01")
        #expect(message.properties.headers?[EventMessage.Header.schemaVersion] == .int64(1))
        #expect(try JSONDecoder().decode(Charge.self, from: message.body) == Charge(orderID: "42", amount: 10))
    }

    @Test func theIncomingCommandRoundTrips() throws {
        let cause = UUID()
        let command = try encoded(metadata: EventMetadata(causationID: cause))
        let received = try CommandMessage.incoming(
            delivery(CommandMessage.outgoing(command, sender: "order")), context: "payment", registry: CommandRegistry([Charge.self]))
        #expect(received.sender == "order")
        #expect(received.envelope.id == command.id)
        #expect(received.envelope.metadata.causationID == cause)
        #expect(received.envelope.metadata.correlationID == command.metadata.correlationID)
        #expect(received.as(Charge.self) == Charge(orderID: "42", amount: 10))
        #expect(received.caused(ItemCounted(index: 1)).metadata.causationID == command.id)
    }

    @Test func poisonCommandsNameTheirReason() throws {
        let message = CommandMessage.outgoing(try encoded(), sender: "order")
        let registry = CommandRegistry([Charge.self])
        func reason(_ delivery: Delivery, context: String = "payment", registry: CommandRegistry = registry) -> String? {
            do {
                _ = try CommandMessage.incoming(delivery, context: context, registry: registry)
                return nil
            } catch {
                return error.code.reason
            }
        }
        #expect(reason(delivery(message), registry: CommandRegistry()) == "unknownCommandType")
        #expect(reason(delivery(message), context: "invoice") == "misrouted")
        #expect(reason(delivery(message, routingKey: "payment.Other")) == "misrouted")
        var noID = message
        noID.properties.messageId = nil
        #expect(reason(delivery(noID)) == "missingMessageID")
        var badJSON = message
        badJSON.body = Data("{\"orderID\": 1}".utf8)
        #expect(reason(delivery(badJSON)) == "undecodablePayload")
        var badCause = message
        badCause.properties.headers?[EventMessage.Header.causationID] = .string("nope")
        #expect(reason(delivery(badCause)) == "invalidHeaders")
    }

    @Test func aRefusedCommandIsRetriedThenParkedAndALostConfirmNeverParks() throws {
        let policy = RetryPolicy(initialBackoff: .milliseconds(100), maximumBackoff: .seconds(1), attemptLimit: 2)
        var entry = CommandOutboxEntry(command: try encoded(), state: .pending)
        #expect(CommandSettlement.action(for: entry, outcome: .confirmed, retry: policy) == .markSent)
        #expect(
            CommandSettlement.action(for: entry, outcome: .nacked, retry: policy, randomFraction: 0)
                == .retry(
                    attempts: 1, reason: "the broker refused the message (basic.nack)",
                    retryIn: policy.delay(afterAttempts: 1, randomFraction: 0)))
        entry.attempts = 1
        guard
            case .park(2, let reason) = CommandSettlement.action(
                for: entry, outcome: .returned(replyCode: 312, replyText: "NO_ROUTE"), retry: policy)
        else {
            Issue.record("a second refusal parks")
            return
        }
        #expect(reason.contains("312 NO_ROUTE"))
        entry.attempts = 10
        guard
            case .retry(11, _, _) = CommandSettlement.action(
                for: entry, outcome: .notConfirmed(AMQPError(.connectionClosed, "gone")), retry: policy)
        else {
            Issue.record("a lost confirm is retried")
            return
        }
    }

    @Test func aContextThatAcceptsCommandsHasACommandQueueDeadLetteredLikeItsInbox() {
        let topology = ContextTopology(
            ContextDescription(name: "payment", deliveryLimit: 3, acceptsCommands: true, commandTargets: ["invoice"]))
        #expect(topology.exchanges.map(\.name).contains("payment.commands"))
        #expect(topology.exchanges.map(\.name).contains("invoice.commands"))
        let queue = topology.queues.first { $0.name == "payment.commands" }
        #expect(queue?.arguments["x-queue-type"] == "quorum")
        #expect(queue?.arguments["x-delivery-limit"] == .int64(3))
        #expect(queue?.arguments["x-dead-letter-exchange"] == .string("payment.dlx"))
        #expect(
            topology.bindings.contains(AMQPBinding(queue: "payment.commands", exchange: "payment.commands", routingKey: "payment.#")))
        let plain = ContextTopology(ContextDescription(name: "invoice"))
        #expect(!plain.queues.map(\.name).contains("invoice.commands"), "no command queue unless the context accepts commands")
    }
}

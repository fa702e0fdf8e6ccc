@testable import EventSourceryRabbitMQ
import Testing

/// The choice of the endpoint to open, for a configuration with the nodes of a cluster.
@Suite struct ConnectionStateMachineEndpointTests {
    typealias Machine = ConnectionStateMachine

    static let refused = ConnectionStateMachineTests.refused
    static let socketError = ConnectionStateMachineTests.socketError

    /// Three endpoints; a random source of 0 shuffles them to the order 1, 2, 0.
    static func machine(maximumAttempts: Int? = nil) -> Machine {
        Machine(
            recovery: .init(backoff: ConnectionStateMachineTests.backoff, maximumAttempts: maximumAttempts), endpointCount: 3,
            randomFraction: { 0 })
    }

    static func openMachine(maximumAttempts: Int? = nil) -> Machine {
        var machine = machine(maximumAttempts: maximumAttempts)
        _ = machine.connectRequested()
        _ = machine.connected()
        return machine
    }

    @Test func theFirstConnectOpensTheFirstEndpointOfTheShuffledOrder() {
        var machine = Self.machine()
        #expect(machine.endpoints.order == [1, 2, 0])
        #expect(machine.connectRequested().endpoint == 1)
    }

    @Test func aFailedFirstConnectTriesTheOtherEndpointsBeforeReportingTheError() {
        var machine = Self.machine()
        _ = machine.connectRequested()
        #expect(machine.connectFailed(Self.refused).endpoint == 2)
        #expect(machine.state == .connecting)
        #expect(machine.connectFailed(Self.refused).endpoint == 0)
        #expect(machine.connectFailed(Self.refused).summary == "reportConnectFailure(connectionRefused)")
        #expect(machine.state == .disconnected)
        // Trying again goes round all of them once more.
        #expect(machine.connectRequested().endpoint == 1)
    }

    @Test func aFirstConnectThatSucceedsOnALaterEndpointStaysThere() {
        var machine = Self.machine()
        _ = machine.connectRequested()
        _ = machine.connectFailed(Self.refused)
        #expect(machine.connected().summary == "none")
        #expect(machine.state == .open(.closed))
        #expect(machine.endpoints.current == 2)
    }

    @Test func aLostConnectionReconnectsToTheNextEndpointAfterTheBackoff() {
        var machine = Self.openMachine()
        #expect(machine.connectionLost(Self.socketError).summary == "scheduleReconnect(0, 0.1 seconds)")
        #expect(machine.backoffElapsed().endpoint == 2)
        #expect(machine.connected().summary == "declareTopology")
        #expect(machine.topologyDeclared().summary == "reopenConsumers")
        #expect(machine.consumersReopened().summary == "resumeParkedOperations(1)")
        #expect(machine.endpoints.current == 2)
    }

    @Test func aFailedReconnectTriesTheNextEndpointWithoutWaiting() {
        var machine = Self.openMachine()
        _ = machine.connectionLost(Self.socketError)
        #expect(machine.backoffElapsed().endpoint == 2)
        // Endpoint 2 is down too: endpoint 0 without a delay, within the same attempt.
        #expect(machine.connectFailed(Self.refused).summary == "scheduleReconnect(0, 0.0 seconds)")
        #expect(machine.state == .backingOff(attempt: 0))
        #expect(machine.backoffElapsed().endpoint == 0)
        #expect(machine.state == .reconnecting(attempt: 0))
        #expect(machine.connected().summary == "declareTopology")
        #expect(machine.topologyDeclared().summary == "reopenConsumers")
        #expect(machine.consumersReopened().summary == "resumeParkedOperations(1)")
    }

    @Test func aConnectionLostWhileRecoveringMovesOnToTheNextEndpoint() {
        var machine = Self.openMachine()
        _ = machine.connectionLost(Self.socketError)
        _ = machine.backoffElapsed()
        _ = machine.connected()
        // The node dies while the topology is declared on it: the owner unwinds, then
        // opens the next endpoint.
        #expect(machine.connectionLost(Self.socketError).summary == "scheduleReconnect(0, 0.0 seconds)")
        #expect(machine.topologyDeclared().summary == "none")
        #expect(machine.backoffElapsed().endpoint == 0)
        #expect(machine.state == .reconnecting(attempt: 0))
    }

    @Test func whenEveryEndpointFailsRecoveryBacksOffAsWithOne() {
        var machine = Self.openMachine()
        _ = machine.connectionLost(Self.socketError)
        var tried: [Int] = []
        var action = machine.backoffElapsed()
        var schedules: [String] = []
        for _ in 0..<8 {
            switch action {
            case .openConnection(let endpoint):
                tried.append(endpoint)
                action = machine.connectFailed(Self.refused)
            case .scheduleReconnect:
                schedules.append(action.summary)
                action = machine.backoffElapsed()
            default:
                Issue.record("unexpected \(action.summary)")
                return
            }
        }
        // The lost endpoint 1 counts as the first round's first failure: 2 and 0 are tried,
        // then recovery backs off, and the second round tries all three.
        #expect(tried == [2, 0, 1, 2])
        #expect(
            schedules == [
                "scheduleReconnect(0, 0.0 seconds)", "scheduleReconnect(1, 0.2 seconds)", "scheduleReconnect(1, 0.0 seconds)",
                "scheduleReconnect(1, 0.0 seconds)",
            ])
        #expect(machine.state == .reconnecting(attempt: 1))
    }

    @Test func maximumAttemptsCountsRoundsOverAllEndpoints() {
        var machine = Self.openMachine(maximumAttempts: 2)
        _ = machine.connectionLost(Self.socketError)
        var opened = 0
        var action = machine.backoffElapsed()
        while true {
            switch action {
            case .openConnection:
                opened += 1
                action = machine.connectFailed(Self.refused)
            case .scheduleReconnect:
                action = machine.backoffElapsed()
            case .cleanUp(.recoveryGaveUp(_, let attempts)):
                #expect(attempts == 2)
                #expect(opened == 5)
                #expect(machine.state == .disconnected)
                return
            default:
                Issue.record("unexpected \(action.summary)")
                return
            }
        }
    }

    @Test func unconfirmedPublishesAreNotConfirmedWhenTheNodeIsLost() {
        var machine = Self.openMachine()
        _ = machine.publishRequested([.init(messageId: "a", mandatory: false), .init(messageId: "b", mandatory: false)], window: 10)
        _ = machine.publishChannelOpened()
        _ = machine.messagesPublished(0..<2)
        _ = machine.ackReceived(tag: 1, multiple: false)
        _ = machine.connectionLost(Self.socketError)
        guard case .finish(let outcomes) = machine.nextPublishAction() else {
            Issue.record("expected the batch to finish")
            return
        }
        #expect(outcomes.map(\.isConfirmed) == [true, false])
        // A confirm for the lost connection's publish that arrives late changes nothing.
        _ = machine.backoffElapsed()
        #expect(machine.ackReceived(tag: 2, multiple: false).summary == "finish()")
    }
}

extension ConnectionStateMachine.Action {
    /// The endpoint of ``openConnection(endpoint:)``; `nil` for any other action.
    var endpoint: Int? {
        guard case .openConnection(let endpoint) = self else { return nil }
        return endpoint
    }
}

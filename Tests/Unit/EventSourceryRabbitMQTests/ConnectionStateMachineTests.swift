@testable import EventSourceryRabbitMQ
import Testing

@Suite struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine

    static let backoff = ReconnectBackoff(initialDelay: .milliseconds(100), maximumDelay: .seconds(1), multiplier: 2, jitter: 0.5)
    static let socketError = AMQPError(.connectionClosed, "the connection was lost while reading from the broker: socket closed")
    static let heartbeatLoss = AMQPError(.heartbeatTimeout, "the broker missed its heartbeats")
    static let brokerClose = AMQPError.connectionClose(
        replyCode: 320, replyText: "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'", duringLogin: false,
        vhost: "/")
    static let refused = AMQPError(.connectionRefused, "could not connect to 127.0.0.1:5673")
    static let loginRefused = AMQPError.connectionClose(
        replyCode: 403, replyText: "ACCESS_REFUSED - Login was refused", duringLogin: true, vhost: "/")

    static func machine(maximumAttempts: Int? = nil, isEnabled: Bool = true, randomFraction: Double = 0) -> Machine {
        Machine(
            recovery: .init(isEnabled: isEnabled, backoff: backoff, maximumAttempts: maximumAttempts), randomFraction: { randomFraction })
    }

    /// A machine with an open connection (publishing channel not yet opened).
    static func openMachine(maximumAttempts: Int? = nil, isEnabled: Bool = true) -> Machine {
        var machine = machine(maximumAttempts: maximumAttempts, isEnabled: isEnabled)
        _ = machine.connectRequested()
        _ = machine.connected()
        return machine
    }

    // MARK: Connecting

    @Test func firstConnectOpensAConnection() {
        var machine = Self.machine()
        #expect(machine.state == .disconnected)
        #expect(machine.connectRequested().summary == "openConnection")
        #expect(machine.state == .connecting)
        #expect(machine.connected().summary == "none")
        #expect(machine.state == .open(.closed))
        #expect(machine.connectRequested().summary == "none")
    }

    @Test(arguments: [refused, loginRefused, AMQPError(.tlsFailure, "handshake failed")])
    func firstConnectFailureGoesToTheCallerAndIsNotRetried(error: AMQPError) {
        var machine = Self.machine()
        _ = machine.connectRequested()
        let action = machine.connectFailed(error)
        guard case .reportConnectFailure(let reported) = action else {
            Issue.record("expected the failure to be reported, got \(action.summary)")
            return
        }
        #expect(reported.code == error.code)
        #expect(machine.state == .disconnected)
        #expect(machine.backoffElapsed().summary == "none")
        // The application may try again.
        #expect(machine.connectRequested().summary == "openConnection")
    }

    // MARK: Losing the connection

    @Test(arguments: [socketError, heartbeatLoss, brokerClose])
    func aLostConnectionIsReopenedAfterTheBackoff(cause: AMQPError) {
        var machine = Self.openMachine()
        let lost = machine.connectionLost(cause)
        guard case .scheduleReconnect(attempt: 0, after: let delay, error: let error) = lost else {
            Issue.record("expected a scheduled reconnect, got \(lost.summary)")
            return
        }
        #expect(delay == .milliseconds(100))
        #expect(error.code == cause.code && error.replyCode == cause.replyCode)
        #expect(machine.state == .backingOff(attempt: 0))
        #expect(machine.isRecovering)

        #expect(machine.backoffElapsed().summary == "openConnection")
        #expect(machine.state == .reconnecting(attempt: 0))
        #expect(machine.connected().summary == "declareTopology")
        #expect(machine.state == .declaringTopology(attempt: 0))
        #expect(machine.topologyDeclared().summary == "reopenConsumers")
        #expect(machine.state == .reopeningConsumers(attempt: 0))
        #expect(machine.consumersReopened().summary == "resumeParkedOperations(1)")
        #expect(machine.state == .open(.closed))
        #expect(!machine.isRecovering)
    }

    @Test(arguments: [socketError, heartbeatLoss, brokerClose])
    func withoutRecoveryALostConnectionFailsEverything(cause: AMQPError) {
        var machine = Self.openMachine(isEnabled: false)
        let action = machine.connectionLost(cause)
        guard case .cleanUp(.connectionLost(let error)) = action else {
            Issue.record("expected a clean-up, got \(action.summary)")
            return
        }
        #expect(error.code == cause.code)
        #expect(machine.state == .disconnected)
        #expect(machine.backoffElapsed().summary == "none")
        #expect(machine.state == .disconnected)
    }

    @Test func theBackoffGrowsWithEachFailedAttemptUpToTheCap() {
        var machine = Self.openMachine()
        var delays: [Duration] = []
        var action = machine.connectionLost(Self.socketError)
        for attempt in 0..<7 {
            guard case .scheduleReconnect(let scheduled, let delay, _) = action else {
                Issue.record("expected a scheduled reconnect, got \(action.summary)")
                return
            }
            #expect(scheduled == attempt)
            delays.append(delay)
            #expect(machine.backoffElapsed().summary == "openConnection")
            action = machine.connectFailed(Self.refused)
        }
        #expect(
            delays == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1), .seconds(1),
            ])
        // A success afterwards reports every attempt.
        #expect(machine.backoffElapsed().summary == "openConnection")
        _ = machine.connected()
        _ = machine.topologyDeclared()
        #expect(machine.consumersReopened().summary == "resumeParkedOperations(8)")
    }

    @Test func jitterShortensTheDelayByAtMostItsFraction() {
        var machine = Self.machine(randomFraction: 1)
        _ = machine.connectRequested()
        _ = machine.connected()
        #expect(machine.connectionLost(Self.socketError).summary == "scheduleReconnect(0, 0.05 seconds)")
    }

    @Test func recoveryGivesUpAfterTheMaximumNumberOfAttempts() {
        var machine = Self.openMachine(maximumAttempts: 3)
        #expect(machine.connectionLost(Self.socketError).summary == "scheduleReconnect(0, 0.1 seconds)")
        _ = machine.backoffElapsed()
        #expect(machine.connectFailed(Self.refused).summary == "scheduleReconnect(1, 0.2 seconds)")
        _ = machine.backoffElapsed()
        #expect(machine.connectFailed(Self.refused).summary == "scheduleReconnect(2, 0.4 seconds)")
        _ = machine.backoffElapsed()
        let last = machine.connectFailed(Self.refused)
        guard case .cleanUp(.recoveryGaveUp(let error, attempts: 3)) = last else {
            Issue.record("expected recovery to give up after 3 attempts, got \(last.summary)")
            return
        }
        #expect(error.code == .connectionRefused)
        #expect(machine.state == .disconnected)
        #expect(!machine.isRecovering)
        #expect(machine.operationSubmitted(waitsForRecovery: true) == .run)
    }

    @Test func aRefusedLoginDuringRecoveryIsRetriedOnlyAsOftenAsConfigured() {
        var machine = Self.openMachine(maximumAttempts: 2)
        _ = machine.connectionLost(Self.brokerClose)
        var attempts = 0
        var action = machine.backoffElapsed()
        while case .openConnection = action {
            attempts += 1
            action = machine.connectFailed(Self.loginRefused)
            if case .scheduleReconnect = action { action = machine.backoffElapsed() }
        }
        #expect(attempts == 2)
        guard case .cleanUp(.recoveryGaveUp(let error, attempts: 2)) = action else {
            Issue.record("expected recovery to give up, got \(action.summary)")
            return
        }
        #expect(error.code == .authenticationFailed)
        #expect(machine.state == .disconnected)
    }

    @Test(arguments: [Machine.State.declaringTopology(attempt: 0), .reopeningConsumers(attempt: 0)])
    func aBrokerCloseDuringRecoveryCountsAsAFailedAttempt(state: Machine.State) {
        var machine = Self.machine(in: state)
        #expect(machine.connectionLost(Self.brokerClose).summary == "scheduleReconnect(1, 0.2 seconds)")
        #expect(machine.state == .backingOff(attempt: 1))
        // The late report of the step that was interrupted changes nothing.
        #expect(machine.topologyDeclared().summary == "none")
        #expect(machine.consumersReopened().summary == "none")
        #expect(machine.state == .backingOff(attempt: 1))

        var limited = Self.machine(in: state, maximumAttempts: 1)
        #expect(limited.connectionLost(Self.brokerClose).summary == "cleanUp(recoveryGaveUp(1))")
        #expect(limited.state == .disconnected)
    }

    @Test func closeDuringBackoffEndsRecovery() {
        var machine = Self.openMachine()
        _ = machine.connectionLost(Self.socketError)
        #expect(machine.closeRequested().summary == "cleanUp(closedByApplication)")
        #expect(machine.state == .closed)
        // The reconnect timer that fires afterwards does nothing.
        #expect(machine.backoffElapsed().summary == "none")
        #expect(machine.state == .closed)
        let connect = machine.connectRequested()
        guard case .reportConnectFailure(let error) = connect else {
            Issue.record("expected connect to fail after close, got \(connect.summary)")
            return
        }
        #expect(error.code == .closedByClient)
        #expect(machine.closeRequested().summary == "none")
    }

    @Test func closeWhileOpenClosesTheConnection() {
        var machine = Self.openMachine()
        #expect(machine.closeRequested().summary == "closeConnection(closedByApplication)")
        #expect(machine.state == .closed)
        #expect(machine.connectionLost(Self.socketError).summary == "none")
        #expect(Machine.Cleanup.closedByApplication.error.code == .closedByClient)
    }

    @Test func operationsWaitOnlyWhileRecovering() {
        var machine = Self.openMachine()
        #expect(machine.operationSubmitted(waitsForRecovery: true) == .run)
        _ = machine.connectionLost(Self.heartbeatLoss)
        #expect(machine.operationSubmitted(waitsForRecovery: true) == .park)
        #expect(machine.operationSubmitted(waitsForRecovery: false) == .run)
        #expect(machine.notConnectedError.message == "the connection is recovering")
        _ = machine.backoffElapsed()
        _ = machine.connected()
        _ = machine.topologyDeclared()
        _ = machine.consumersReopened()
        #expect(machine.operationSubmitted(waitsForRecovery: true) == .run)
    }

    // MARK: Every state × every lifecycle event

    enum StateName: String, CaseIterable, Sendable {
        case disconnected, connecting, open, backingOff, reconnecting, declaringTopology, reopeningConsumers, closed

        var state: Machine.State {
            switch self {
            case .disconnected: .disconnected
            case .connecting: .connecting
            case .open: .open(.closed)
            case .backingOff: .backingOff(attempt: 0)
            case .reconnecting: .reconnecting(attempt: 0)
            case .declaringTopology: .declaringTopology(attempt: 0)
            case .reopeningConsumers: .reopeningConsumers(attempt: 0)
            case .closed: .closed
            }
        }
    }

    enum Event: String, CaseIterable, Sendable {
        case connectRequested, connected, connectFailed, connectionLost, backoffElapsed, topologyDeclared, consumersReopened
        case closeRequested

        func send(to machine: inout Machine) -> Machine.Action {
            switch self {
            case .connectRequested: machine.connectRequested()
            case .connected: machine.connected()
            case .connectFailed: machine.connectFailed(ConnectionStateMachineTests.refused)
            case .connectionLost: machine.connectionLost(ConnectionStateMachineTests.socketError)
            case .backoffElapsed: machine.backoffElapsed()
            case .topologyDeclared: machine.topologyDeclared()
            case .consumersReopened: machine.consumersReopened()
            case .closeRequested: machine.closeRequested()
            }
        }
    }

    /// The expected next state and action for every state and event; events missing from a
    /// row leave the state unchanged and return `none`.
    static let transitions: [StateName: [Event: (Machine.State, String)]] = [
        .disconnected: [
            .connectRequested: (.connecting, "openConnection"),
            .closeRequested: (.closed, "cleanUp(closedByApplication)"),
        ],
        .connecting: [
            .connected: (.open(.closed), "none"),
            .connectFailed: (.disconnected, "reportConnectFailure(connectionRefused)"),
            .closeRequested: (.closed, "cleanUp(closedByApplication)"),
        ],
        .open: [
            .connectionLost: (.backingOff(attempt: 0), "scheduleReconnect(0, 0.1 seconds)"),
            .closeRequested: (.closed, "closeConnection(closedByApplication)"),
        ],
        .backingOff: [
            .backoffElapsed: (.reconnecting(attempt: 0), "openConnection"),
            .closeRequested: (.closed, "cleanUp(closedByApplication)"),
        ],
        .reconnecting: [
            .connected: (.declaringTopology(attempt: 0), "declareTopology"),
            .connectFailed: (.backingOff(attempt: 1), "scheduleReconnect(1, 0.2 seconds)"),
            .closeRequested: (.closed, "cleanUp(closedByApplication)"),
        ],
        .declaringTopology: [
            .connectionLost: (.backingOff(attempt: 1), "scheduleReconnect(1, 0.2 seconds)"),
            .topologyDeclared: (.reopeningConsumers(attempt: 0), "reopenConsumers"),
            .closeRequested: (.closed, "closeConnection(closedByApplication)"),
        ],
        .reopeningConsumers: [
            .connectionLost: (.backingOff(attempt: 1), "scheduleReconnect(1, 0.2 seconds)"),
            .consumersReopened: (.open(.closed), "resumeParkedOperations(1)"),
            .closeRequested: (.closed, "closeConnection(closedByApplication)"),
        ],
        .closed: [
            .connectRequested: (.closed, "reportConnectFailure(closedByClient)")
        ],
    ]

    @Test(arguments: StateName.allCases, Event.allCases)
    func transition(from name: StateName, on event: Event) {
        var machine = Self.machine(in: name.state)
        let (expectedState, expectedAction) = Self.transitions[name]?[event] ?? (name.state, "none")
        let action = event.send(to: &machine)
        #expect(action.summary == expectedAction)
        #expect(machine.state == expectedState)
    }

    @Test(arguments: StateName.allCases)
    func operationsWaitExactlyWhileRecovering(name: StateName) {
        let machine = Self.machine(in: name.state)
        let recovering: Set<StateName> = [.backingOff, .reconnecting, .declaringTopology, .reopeningConsumers]
        #expect(machine.isRecovering == recovering.contains(name))
        #expect(machine.operationSubmitted(waitsForRecovery: true) == (recovering.contains(name) ? .park : .run))
        #expect(machine.operationSubmitted(waitsForRecovery: false) == .run)
    }

    @Test(arguments: StateName.allCases)
    func publishingFramesWithoutABatchChangeNothing(name: StateName) {
        var machine = Self.machine(in: name.state)
        #expect(machine.ackReceived(tag: 1, multiple: true).summary == "finish()")
        #expect(machine.nackReceived(tag: 2, multiple: false).summary == "finish()")
        #expect(machine.returnReceived(messageId: "m0", replyCode: 312, replyText: "NO_ROUTE").summary == "finish()")
        let closed = AMQPError.channelClose(replyCode: 406, replyText: "PRECONDITION_FAILED", context: "publishing")
        #expect(machine.publishChannelClosed(closed).summary == "finish()")
        #expect(machine.state == name.state)
    }

    /// Drives a fresh machine into `state` through valid events.
    static func machine(in state: Machine.State, maximumAttempts: Int? = nil) -> Machine {
        var machine = machine(maximumAttempts: maximumAttempts)
        let path: [Event]
        switch state {
        case .disconnected: path = []
        case .connecting: path = [.connectRequested]
        case .open: path = [.connectRequested, .connected]
        case .backingOff: path = [.connectRequested, .connected, .connectionLost]
        case .reconnecting: path = [.connectRequested, .connected, .connectionLost, .backoffElapsed]
        case .declaringTopology: path = [.connectRequested, .connected, .connectionLost, .backoffElapsed, .connected]
        case .reopeningConsumers:
            path = [.connectRequested, .connected, .connectionLost, .backoffElapsed, .connected, .topologyDeclared]
        case .closed: path = [.closeRequested]
        }
        for event in path { _ = event.send(to: &machine) }
        #expect(machine.state == state)
        return machine
    }

    // MARK: Publishing

    static func messages(_ count: Int, mandatory: Bool = true) -> [Machine.PublishedMessage] {
        (0..<count).map { Machine.PublishedMessage(messageId: "m\($0)", mandatory: mandatory) }
    }

    @Test func aBatchOpensTheChannelPublishesWithinTheWindowAndFinishesWhenConfirmed() {
        var machine = Self.openMachine()
        #expect(machine.publishRequested(Self.messages(3), window: 2).summary == "openPublishChannel")
        #expect(machine.publishChannelOpened().summary == "publish(0..<2)")
        #expect(machine.messagesPublished(0..<2).summary == "awaitConfirms")
        #expect(machine.state == .open(.confirming(nextTag: 3)))
        #expect(machine.ackReceived(tag: 1, multiple: false).summary == "publish(2..<3)")
        #expect(machine.messagesPublished(2..<3).summary == "awaitConfirms")
        #expect(machine.isResolved(0) && !machine.isResolved(1))
        #expect(machine.ackReceived(tag: 3, multiple: true).summary == "finish(confirmed, confirmed, confirmed)")

        // The next batch continues the channel's delivery tags.
        #expect(machine.publishRequested(Self.messages(2), window: 10).summary == "publish(0..<2)")
        #expect(machine.messagesPublished(0..<2).summary == "awaitConfirms")
        #expect(machine.ackReceived(tag: 4, multiple: false).summary == "awaitConfirms")
        #expect(machine.ackReceived(tag: 5, multiple: false).summary == "finish(confirmed, confirmed)")
        #expect(machine.publishRequested([], window: 10).summary == "finish()")
    }

    @Test func nacksAndReturnsAreReportedPerMessage() {
        var machine = Self.openMachine()
        _ = machine.publishRequested(Self.messages(3), window: 10)
        _ = machine.publishChannelOpened()
        _ = machine.messagesPublished(0..<3)
        #expect(machine.returnReceived(messageId: "m1", replyCode: 312, replyText: "NO_ROUTE").summary == "awaitConfirms")
        #expect(machine.nackReceived(tag: 1, multiple: false).summary == "awaitConfirms")
        #expect(machine.ackReceived(tag: 3, multiple: true).summary == "finish(nacked, returned(312), confirmed)")
    }

    @Test(arguments: [socketError, heartbeatLoss, brokerClose])
    func aReconnectReportsUnconfirmedPublishesAsNotConfirmedNeverAsConfirmed(cause: AMQPError) {
        var machine = Self.openMachine()
        _ = machine.publishRequested(Self.messages(4), window: 3)
        _ = machine.publishChannelOpened()
        _ = machine.messagesPublished(0..<3)
        _ = machine.ackReceived(tag: 1, multiple: false)
        #expect(machine.connectionLost(cause).summary == "scheduleReconnect(0, 0.1 seconds)")
        // Tag 2 was acknowledged by the old connection's broker, but the ack never arrived.
        #expect(machine.ackReceived(tag: 2, multiple: true).summary == "finish(confirmed, notConfirmed, notConfirmed, notConfirmed)")
        // Confirms without a batch belong to no one.
        #expect(machine.ackReceived(tag: 3, multiple: true).summary == "finish()")

        // After recovery the channel is opened anew and its tags restart at 1: a confirm of
        // the old numbering cannot confirm a message of a new batch twice.
        _ = machine.backoffElapsed()
        _ = machine.connected()
        _ = machine.topologyDeclared()
        _ = machine.consumersReopened()
        #expect(machine.publishRequested(Self.messages(1), window: 10).summary == "openPublishChannel")
        #expect(machine.publishChannelOpened().summary == "publish(0..<1)")
        #expect(machine.messagesPublished(0..<1).summary == "awaitConfirms")
        #expect(machine.ackReceived(tag: 2, multiple: false).summary == "awaitConfirms")
        #expect(machine.ackReceived(tag: 1, multiple: false).summary == "finish(confirmed)")
    }

    @Test func aConnectionLostBeforeTheChannelOpenedFailsTheWholeBatch() {
        var machine = Self.openMachine(isEnabled: false)
        #expect(machine.publishRequested(Self.messages(2), window: 10).summary == "openPublishChannel")
        #expect(machine.connectionLost(Self.heartbeatLoss).summary == "cleanUp(connectionLost)")
        #expect(machine.nextPublishAction().summary == "finish(notConfirmed, notConfirmed)")
    }

    @Test func aClosedPublishingChannelFailsTheBatchAndIsReopenedForTheNext() {
        var machine = Self.openMachine()
        _ = machine.publishRequested(Self.messages(2), window: 10)
        _ = machine.publishChannelOpened()
        _ = machine.messagesPublished(0..<2)
        let closed = AMQPError.channelClose(replyCode: 404, replyText: "NOT_FOUND - no exchange", context: "publishing")
        #expect(machine.publishChannelClosed(closed).summary == "finish(notConfirmed, notConfirmed)")
        #expect(machine.state == .open(.closed))
        #expect(machine.publishRequested(Self.messages(1), window: 10).summary == "openPublishChannel")
        let refused = AMQPError.channelClose(replyCode: 403, replyText: "ACCESS_REFUSED", context: "enabling publisher confirms")
        #expect(machine.publishChannelFailed(refused).summary == "finish(notConfirmed)")
        #expect(machine.state == .open(.closed))
    }

    @Test(arguments: StateName.allCases)
    func publishingNeedsAnOpenConnection(name: StateName) {
        var machine = Self.machine(in: name.state)
        let action = machine.publishRequested(Self.messages(1), window: 1)
        switch (name, action) {
        case (.open, .openPublishChannel):
            break
        case (.closed, .fail(let error)):
            #expect(error.code == .closedByClient)
        case (.disconnected, .fail(let error)), (.connecting, .fail(let error)):
            #expect(error.code == .connectionClosed && error.message == "not connected")
        case (_, .fail(let error)):
            #expect(error.code == .connectionClosed && error.message == "the connection is recovering")
            #expect(machine.isRecovering)
        default:
            Issue.record("unexpected \(action.summary) in \(name)")
        }
        #expect(machine.state == name.state)
    }
}

extension ConnectionStateMachine.Action {
    /// A comparable description (AMQPError is not Equatable).
    var summary: String {
        switch self {
        case .none: "none"
        case .openConnection: "openConnection"
        case .reportConnectFailure(let error): "reportConnectFailure(\(error.code))"
        case .scheduleReconnect(let attempt, let delay, _): "scheduleReconnect(\(attempt), \(delay))"
        case .declareTopology: "declareTopology"
        case .reopenConsumers: "reopenConsumers"
        case .resumeParkedOperations(let attempts): "resumeParkedOperations(\(attempts))"
        case .closeConnection(let cleanup): "closeConnection(\(cleanup.summary))"
        case .cleanUp(let cleanup): "cleanUp(\(cleanup.summary))"
        }
    }
}

extension ConnectionStateMachine.Cleanup {
    var summary: String {
        switch self {
        case .closedByApplication: "closedByApplication"
        case .connectionLost: "connectionLost"
        case .recoveryGaveUp(_, let attempts): "recoveryGaveUp(\(attempts))"
        }
    }
}

extension ConnectionStateMachine.PublishAction {
    var summary: String {
        switch self {
        case .fail(let error): "fail(\(error.code))"
        case .openPublishChannel: "openPublishChannel"
        case .publish(let indices): "publish(\(indices))"
        case .awaitConfirms: "awaitConfirms"
        case .finish(let outcomes): "finish(\(outcomes.map(Self.summary).joined(separator: ", ")))"
        }
    }

    private static func summary(_ outcome: PublishOutcome) -> String {
        switch outcome {
        case .confirmed: "confirmed"
        case .nacked: "nacked"
        case .returned(let code, _): "returned(\(code))"
        case .notConfirmed: "notConfirmed"
        }
    }
}

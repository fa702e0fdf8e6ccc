/// The lifecycle of one logical connection — connecting, recovery after a loss, closing —
/// and the publisher-confirm bookkeeping of its publishing channel, as a pure state machine.
///
/// The machine does no I/O, reads no clock and draws no random numbers of its own. Its
/// owner, ``ConnectionSession`` on the connection thread, reports what happened through the
/// `mutating` event functions and executes the ``Action`` (or ``PublishAction``) each one
/// returns: open a socket, declare the topology again, re-open consumers, wait before the
/// next attempt, fail or resume waiting operations, close. Outcomes of those actions come
/// back as further events.
///
/// ## States
///
/// - ``State/disconnected``: never connected, the first connect failed, or the connection
///   was lost for good (recovery disabled, or it gave up). ``connectRequested()`` starts over.
/// - ``State/connecting``: the first connection is being opened; a failure goes to the
///   caller of `connect()` and is never retried here.
/// - ``State/open(_:)``: a connection is usable; carries the publishing channel's state.
/// - ``State/backingOff(attempt:)``: the connection was lost; the owner waits out the
///   backoff before attempt `attempt` (0 = the first retry).
/// - ``State/reconnecting(attempt:)``: attempt `attempt` opens a socket and logs in.
/// - ``State/declaringTopology(attempt:)``: logged in again; the registered exchanges,
///   queues and bindings are declared again.
/// - ``State/reopeningConsumers(attempt:)``: the registered consumers are re-opened.
/// - ``State/closed``: closed by the application; final.
///
/// ## Endpoints
///
/// With several endpoints (the nodes of a cluster) ``Action/openConnection(endpoint:)``
/// names the one to open, chosen by an ``EndpointRotation``: shuffled once, then round robin.
/// A failed first connect moves on to the next endpoint at once, staying in
/// ``State/connecting``; a failed recovery attempt schedules the next endpoint without a
/// delay, in ``State/backingOff(attempt:)`` with the same attempt. Only when every endpoint
/// failed in a row does the first connect report the error, or recovery back off. A lost connection moves on to the
/// next endpoint too and counts as the first failure of the round, so recovery tries the
/// other nodes before it backs off and starts over. An attempt, for the backoff
/// and `maximumAttempts`, is one round over all endpoints. With one endpoint this is the
/// same as retrying it.
///
/// ## Transitions
///
/// ```
/// disconnected ──connectRequested──▶ connecting ──connected──▶ open
///      ▲                                 │ ▲
///      │                                 └─┘ connectFailed, an endpoint not tried yet
///      └──────────connectFailed──────────┘   (every endpoint failed: error reported to the caller)
///
/// open ──connectionLost──▶ backingOff(0)             (recovery enabled; unconfirmed publishes fail)
/// open ──connectionLost──▶ disconnected              (recovery disabled; everything fails)
/// backingOff(n) ──backoffElapsed──▶ reconnecting(n)
/// reconnecting(n) ──connected──▶ declaringTopology(n) ──topologyDeclared──▶ reopeningConsumers(n)
/// reopeningConsumers(n) ──consumersReopened──▶ open   (parked operations resume)
/// reconnecting(n) / declaringTopology(n) / reopeningConsumers(n)
///     ──connectFailed / connectionLost──▶ backingOff(n) without a delay while an endpoint
///                                          is not tried yet, else backingOff(n + 1), or
///                                          disconnected once `maximumAttempts` attempts failed
/// any state but closed ──closeRequested──▶ closed
/// closed ──connectRequested──▶ closed                 (closedByClient reported to the caller)
/// ```
///
/// Every other lifecycle event leaves the state unchanged and returns ``Action/none``: a
/// stale `backoffElapsed` after a close, a second loss report for a connection already
/// discarded, `connectRequested` while open or recovering. Confirms without a publish batch
/// change nothing either.
///
/// ## Publishing
///
/// A publish batch runs entirely on the connection thread. ``publishRequested(_:window:)``
/// starts it; the owner then executes ``PublishAction``s — open the publishing channel in
/// confirm mode, publish a run of messages, read confirms — reporting each result, until
/// ``PublishAction/finish(_:)`` hands back one outcome per message. The broker numbers the
/// publishes on a channel 1, 2, 3, …; the machine mirrors that counter across batches and
/// resets it with the channel. A lost connection or publishing channel resolves every
/// unconfirmed message of the batch as ``PublishOutcome/notConfirmed(_:)``, never as
/// confirmed: confirms that arrive afterwards belong to no batch and are ignored.
struct ConnectionStateMachine {
    /// The lifecycle states; see the type's documentation for the transitions.
    enum State: Equatable {
        case disconnected
        case connecting
        case open(PublishChannel)
        case backingOff(attempt: Int)
        case reconnecting(attempt: Int)
        case declaringTopology(attempt: Int)
        case reopeningConsumers(attempt: Int)
        case closed
    }

    /// The state of the channel that publishes with confirms.
    enum PublishChannel: Equatable {
        /// Not opened on this connection yet, or closed by the broker.
        case closed
        /// In confirm mode; the broker gives the next publish the delivery tag `nextTag`.
        case confirming(nextTag: UInt64)
    }

    /// Why every waiting operation fails and every consumer ends.
    enum Cleanup {
        /// The application closed the connection: consumers finish without an error.
        case closedByApplication
        /// The connection was lost and recovery is disabled.
        case connectionLost(AMQPError)
        /// Recovery failed `attempts` times in a row, reaching the configured maximum.
        case recoveryGaveUp(AMQPError, attempts: Int)

        /// The error for waiting operations (and consumers, unless closed by the application).
        var error: AMQPError {
            switch self {
            case .closedByApplication: AMQPError(.closedByClient, "the connection was closed by the application")
            case .connectionLost(let error), .recoveryGaveUp(let error, _): error
            }
        }
    }

    /// What the owner does after a lifecycle event.
    enum Action {
        /// Nothing.
        case none
        /// Open a socket to endpoint `endpoint` (an index into the configuration's
        /// endpoints), log in and open the control channel; report ``connected()`` or
        /// ``connectFailed(_:)``.
        case openConnection(endpoint: Int)
        /// Throw the error to the caller of `connect()`.
        case reportConnectFailure(AMQPError)
        /// Wait `delay`, then report ``backoffElapsed()``. `error` is why the connection was
        /// lost or the last attempt failed; `attempt` is the attempt that follows.
        case scheduleReconnect(attempt: Int, after: Duration, error: AMQPError)
        /// Declare every registered exchange, queue and binding again; report
        /// ``topologyDeclared()`` (or ``connectionLost(_:)``).
        case declareTopology
        /// Re-open every registered consumer; report ``consumersReopened()`` (or
        /// ``connectionLost(_:)``).
        case reopenConsumers
        /// Recovery succeeded after `attempts` attempts: run the operations that waited.
        case resumeParkedOperations(attempts: Int)
        /// Cancel the consumers and close the live connection, then clean up.
        case closeConnection(Cleanup)
        /// Discard the dead connection (if any), fail every waiting operation and end every
        /// consumer.
        case cleanUp(Cleanup)
    }

    /// What to do with an operation submitted to the connection thread.
    enum OperationAction: Equatable {
        /// Run it now (it fails by itself if there is no connection).
        case run
        /// Keep it until recovery resumes or fails the waiting operations.
        case park
    }

    /// What the owner does next in a publish batch.
    enum PublishAction {
        /// Fail the whole call (there is no connection to publish on).
        case fail(AMQPError)
        /// Open the publishing channel and select confirm mode; report
        /// ``publishChannelOpened()`` or ``publishChannelFailed(_:)``.
        case openPublishChannel
        /// Publish the messages at these indices in order; report ``messagesPublished(_:)``.
        case publish(Range<Int>)
        /// Read the next frame from the broker (confirms, returns, a closed channel).
        case awaitConfirms
        /// The batch is over (the machine forgets it): one outcome per message, in order.
        case finish([PublishOutcome])
    }

    /// What the machine needs of a message to attribute its confirm or return.
    struct PublishedMessage {
        var messageId: String?
        var mandatory: Bool
    }

    private struct PublishBatch {
        var messages: [PublishedMessage]
        var window: Int
        /// Created once the publishing channel is in confirm mode.
        var tracker: ConfirmTracker?
    }

    private(set) var state: State = .disconnected
    /// Which endpoint to open next.
    private(set) var endpoints: EndpointRotation
    private var batch: PublishBatch?
    private let recovery: AMQPConnection.Configuration.Recovery
    private let randomFraction: () -> Double

    /// Creates a machine in ``State/disconnected``.
    ///
    /// - Parameters:
    ///   - recovery: Whether and how a lost connection is re-opened.
    ///   - endpointCount: How many endpoints the configuration lists.
    ///   - randomFraction: The source, a number in 0...1, for shuffling the endpoints and for
    ///     the jitter of ``ReconnectBackoff``.
    init(
        recovery: AMQPConnection.Configuration.Recovery, endpointCount: Int = 1,
        randomFraction: @escaping () -> Double = { Double.random(in: 0...1) }
    ) {
        self.recovery = recovery
        self.randomFraction = randomFraction
        self.endpoints = EndpointRotation(count: endpointCount, randomFraction: randomFraction)
    }

    /// Whether a lost connection is being re-established (operations wait for it).
    var isRecovering: Bool {
        switch state {
        case .backingOff, .reconnecting, .declaringTopology, .reopeningConsumers: true
        case .disconnected, .connecting, .open, .closed: false
        }
    }

    /// The error for an operation that needs a connection and finds none.
    var notConnectedError: AMQPError {
        switch state {
        case .closed: Cleanup.closedByApplication.error
        case _ where isRecovering: AMQPError(.connectionClosed, "the connection is recovering")
        default: AMQPError(.connectionClosed, "not connected")
        }
    }

    // MARK: Lifecycle events

    /// The application asked to connect.
    mutating func connectRequested() -> Action {
        switch state {
        case .disconnected:
            state = .connecting
            return .openConnection(endpoint: endpoints.current)
        case .closed:
            return .reportConnectFailure(notConnectedError)
        case .connecting, .open, .backingOff, .reconnecting, .declaringTopology, .reopeningConsumers:
            // Already open, or recovery brings it back by itself.
            return .none
        }
    }

    /// A socket was opened, the login accepted and the control channel opened.
    mutating func connected() -> Action {
        switch state {
        case .connecting:
            endpoints.succeeded()
            state = .open(.closed)
            return .none
        case .reconnecting(let attempt):
            state = .declaringTopology(attempt: attempt)
            return .declareTopology
        case .disconnected, .open, .backingOff, .declaringTopology, .reopeningConsumers, .closed:
            return .none
        }
    }

    /// Opening a connection failed (refused, unreachable, login refused, TLS, timeout).
    mutating func connectFailed(_ error: AMQPError) -> Action {
        switch state {
        case .connecting:
            guard endpoints.failed() else {
                state = .disconnected
                return .reportConnectFailure(error)
            }
            return .openConnection(endpoint: endpoints.current)
        case .reconnecting(let attempt):
            return attemptFailed(attempt, error)
        case .disconnected, .open, .backingOff, .declaringTopology, .reopeningConsumers, .closed:
            return .none
        }
    }

    /// The connection died: a socket error, missed heartbeats, or the broker's
    /// `connection.close` (its reply code is in the error). The owner has discarded it.
    mutating func connectionLost(_ error: AMQPError) -> Action {
        switch state {
        case .open:
            failBatch(error)
            // Recovery starts with the next endpoint; the lost one counts as the round's first failure.
            _ = endpoints.failed()
            guard recovery.isEnabled else {
                state = .disconnected
                return .cleanUp(.connectionLost(error))
            }
            return backOff(attempt: 0, error)
        case .declaringTopology(let attempt), .reopeningConsumers(let attempt):
            return attemptFailed(attempt, error)
        case .disconnected, .connecting, .backingOff, .reconnecting, .closed:
            // No connection is held in these states: the loss was reported already.
            return .none
        }
    }

    /// The backoff delay of ``Action/scheduleReconnect(attempt:after:error:)`` passed.
    mutating func backoffElapsed() -> Action {
        guard case .backingOff(let attempt) = state else { return .none }
        state = .reconnecting(attempt: attempt)
        return .openConnection(endpoint: endpoints.current)
    }

    /// The registered topology was declared again (items the broker refused are skipped).
    mutating func topologyDeclared() -> Action {
        guard case .declaringTopology(let attempt) = state else { return .none }
        state = .reopeningConsumers(attempt: attempt)
        return .reopenConsumers
    }

    /// The registered consumers were re-opened (those the broker refused have ended).
    mutating func consumersReopened() -> Action {
        guard case .reopeningConsumers(let attempt) = state else { return .none }
        endpoints.succeeded()
        state = .open(.closed)
        return .resumeParkedOperations(attempts: attempt + 1)
    }

    /// The application closed the connection (or released it).
    mutating func closeRequested() -> Action {
        switch state {
        case .open, .declaringTopology, .reopeningConsumers:
            state = .closed
            failBatch(Cleanup.closedByApplication.error)
            return .closeConnection(.closedByApplication)
        case .disconnected, .connecting, .backingOff, .reconnecting:
            state = .closed
            return .cleanUp(.closedByApplication)
        case .closed:
            return .none
        }
    }

    /// An operation arrived on the connection thread.
    ///
    /// - Parameter waitsForRecovery: Whether it should wait for a recovering connection.
    func operationSubmitted(waitsForRecovery: Bool) -> OperationAction {
        waitsForRecovery && isRecovering ? .park : .run
    }

    // MARK: Publishing events

    /// A batch of messages is to be published with confirms.
    ///
    /// - Parameters:
    ///   - messages: The messages' ids and mandatory flags, in publish order.
    ///   - window: The most messages published but not yet confirmed.
    mutating func publishRequested(_ messages: [PublishedMessage], window: Int) -> PublishAction {
        precondition(batch == nil, "publish batches run one at a time on the connection thread")
        guard case .open(let channel) = state else { return .fail(notConnectedError) }
        guard !messages.isEmpty else { return .finish([]) }
        batch = PublishBatch(messages: messages, window: max(1, window))
        if case .confirming(let nextTag) = channel {
            batch?.tracker = ConfirmTracker(count: messages.count, window: max(1, window), firstTag: nextTag)
        }
        return nextPublishAction()
    }

    /// The publishing channel is open and in confirm mode.
    mutating func publishChannelOpened() -> PublishAction {
        guard case .open(.closed) = state else { return nextPublishAction() }
        state = .open(.confirming(nextTag: 1))
        if var current = batch, current.tracker == nil {
            current.tracker = ConfirmTracker(count: current.messages.count, window: current.window, firstTag: 1)
            batch = current
        }
        return nextPublishAction()
    }

    /// Opening the publishing channel or selecting confirm mode failed on an open connection.
    mutating func publishChannelFailed(_ error: AMQPError) -> PublishAction {
        if case .open = state { state = .open(.closed) }
        failBatch(error)
        return nextPublishAction()
    }

    /// The messages of ``PublishAction/publish(_:)`` were written to the socket.
    mutating func messagesPublished(_ indices: Range<Int>) -> PublishAction {
        guard case .open(.confirming(let nextTag)) = state, batch?.tracker?.isComplete == false else {
            return nextPublishAction()
        }
        // Mutated in place: a copy of the tracker would copy its arrays on every run.
        for index in indices {
            let message = batch!.messages[index]
            batch!.tracker!.didPublish(index: index, messageId: message.messageId, mandatory: message.mandatory)
        }
        state = .open(.confirming(nextTag: nextTag + UInt64(indices.count)))
        return nextPublishAction()
    }

    /// The broker confirmed (`basic.ack`) one publish, or with `multiple` all up to `tag`.
    mutating func ackReceived(tag: UInt64, multiple: Bool) -> PublishAction {
        batch?.tracker?.ack(tag: tag, multiple: multiple)
        return nextPublishAction()
    }

    /// The broker refused (`basic.nack`) one publish, or with `multiple` all up to `tag`.
    mutating func nackReceived(tag: UInt64, multiple: Bool) -> PublishAction {
        batch?.tracker?.nack(tag: tag, multiple: multiple)
        return nextPublishAction()
    }

    /// The broker returned an unroutable mandatory message (`basic.return`, before its ack).
    mutating func returnReceived(messageId: String?, replyCode: UInt16, replyText: String) -> PublishAction {
        batch?.tracker?.returned(messageId: messageId, replyCode: replyCode, replyText: replyText)
        return nextPublishAction()
    }

    /// The broker closed the publishing channel (`channel.close`).
    mutating func publishChannelClosed(_ error: AMQPError) -> PublishAction {
        if case .open = state { state = .open(.closed) }
        failBatch(error)
        return nextPublishAction()
    }

    /// The next step of the running batch, e.g. after a ``connectionLost(_:)`` during it.
    mutating func nextPublishAction() -> PublishAction {
        guard let current = batch else { return .finish([]) }
        // Without a tracker the channel is not in confirm mode yet (a loss creates one).
        guard let tracker = current.tracker else { return .openPublishChannel }
        if tracker.isComplete {
            batch = nil
            return .finish(tracker.results)
        }
        if tracker.canPublish {
            let end = min(current.messages.count, tracker.publishedCount + tracker.window - tracker.outstanding)
            return .publish(tracker.publishedCount..<end)
        }
        return .awaitConfirms
    }

    /// Whether message `index` of the running batch has its outcome.
    func isResolved(_ index: Int) -> Bool {
        batch?.tracker?.outcomes[index] != nil
    }

    // MARK: Helpers

    private mutating func failBatch(_ error: AMQPError) {
        guard var current = batch else { return }
        var tracker = current.tracker ?? ConfirmTracker(count: current.messages.count, window: current.window, firstTag: 1)
        tracker.failOutstanding(error)
        current.tracker = tracker
        batch = current
    }

    /// Attempt `attempt` failed on the current endpoint: tries the next endpoint, or once
    /// every endpoint failed in a row backs off (or gives up).
    private mutating func attemptFailed(_ attempt: Int, _ error: AMQPError) -> Action {
        if endpoints.failed() {
            // The next endpoint at once, but through the owner's timer: a loss reported while
            // the topology or the consumers are re-opened unwinds before the next attempt.
            state = .backingOff(attempt: attempt)
            return .scheduleReconnect(attempt: attempt, after: .zero, error: error)
        }
        let failures = attempt + 1
        if let maximum = recovery.maximumAttempts, failures >= maximum {
            state = .disconnected
            return .cleanUp(.recoveryGaveUp(error, attempts: failures))
        }
        return backOff(attempt: failures, error)
    }

    private mutating func backOff(attempt: Int, _ error: AMQPError) -> Action {
        state = .backingOff(attempt: attempt)
        return .scheduleReconnect(
            attempt: attempt, after: recovery.backoff.delay(forAttempt: attempt, randomFraction: randomFraction()), error: error)
    }
}

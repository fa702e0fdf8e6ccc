import EventSourcery
import Logging
import PostgresNIO
import ServiceLifecycle
import NIOConcurrencyHelpers

extension PostgresEventStorage {
    /// Runs the connection pool (when ``connect(configuration:logger:)`` created it), the
    /// listener for outbox notifications and the sender of the notifications of this storage's
    /// commits (see "Notices after commit" in docs/POSTGRESQL.md) until graceful shutdown, cancellation or
    /// ``shutdown()``, then shuts the storage down: later calls fail with
    /// `storageUnavailable`. Run it as the first service of a `ServiceGroup`, so that it stops
    /// last, or around your work with ``withRunning(_:)``.
    ///
    /// - Throws: ``EventStoreError`` `storageUnavailable` when it runs already or ran before.
    public func run() async throws {
        try lifecycle.withLockedValue { state throws in
            guard !state.isRunning, !state.isShutDown else {
                throw EventStoreError(.storageUnavailable, message: "The PostgreSQL event storage runs already or was shut down.")
            }
            state.isRunning = true
            state.sendsNotices = true
        }
        let client = self.client
        let ownsClient = self.ownsClient
        await withTaskGroup(of: Void.self) { group in
            if ownsClient {
                group.addTask {
                    // Nothing between the two calls suspends: the pool is running (postgres-nio's
                    // flag set) long before a query woken by the first one asks it for a connection.
                    self.poolIsStarting()
                    await client.run()
                }
            }
            group.addTask { await self.listenForOutboxChanges() }
            group.addTask { await self.sendNotices() }
            await cancelWhenGracefulShutdown { await self.waitForStopRequest() }
            group.cancelAll()
        }
        finish()
    }

    /// Runs `body` while ``run()`` runs in a child task, then stops it and waits until it
    /// returned: for scripts and tests that use the storage without a `ServiceGroup`.
    public func withRunning<Result>(_ body: () async throws -> Result) async throws -> Result {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.run() }
            do {
                let result = try await body()
                await shutdown()
                return result
            } catch {
                await shutdown()
                throw error
            }
        }
    }

    /// Stops ``run()`` and waits until it returned; without a running ``run()`` it only marks
    /// the storage shut down. Calls made after it fail with `storageUnavailable`.
    public func shutdown() async {
        enum Step { case done, stopRun, closeIdlePool }
        let step = lifecycle.withLockedValue { state -> Step in
            state.isShutDown = true
            if state.isRunning { return state.isFinished ? .done : .stopRun }
            state.isRunning = true  // it never runs now; a second shutdown() waits for the close below
            return .closeIdlePool
        }
        switch step {
        case .done:
            return
        case .closeIdlePool:
            if ownsClient {
                // A pool that never ran: running it cancelled closes it, so that calls made
                // after this fail instead of waiting for it.
                let client = self.client
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        self.poolIsStarting()
                        await client.run()
                    }
                    group.cancelAll()
                }
            }
            finish()
        case .stopRun:
            requestStop()
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let finished = lifecycle.withLockedValue { state in
                    if !state.isFinished { state.finishedWaiters.append(continuation) }
                    return state.isFinished
                }
                if finished { continuation.resume() }
            }
        }
    }

    /// The connection pool, once it runs: waits until ``run()`` started the pool it owns (or
    /// ``shutdown()`` ran it to close it, when ``run()`` never ran), so that no query asks the
    /// pool for a connection before `PostgresClient.run()` was called, which postgres-nio
    /// warns about ("`PostgresClient.run()` hasn't been called yet"). A pool the application
    /// runs (``init(client:configuration:logger:)``) is returned at once.
    ///
    /// - Throws: `CancellationError` when the task is cancelled while it waits.
    func runningClient() async throws -> PostgresClient {
        guard ownsClient else { return client }
        while true {
            let generation = poolStarted.generation
            if lifecycle.withLockedValue({ $0.poolRuns }) { return client }
            _ = await poolStarted.wait(since: generation, timeout: .seconds(3600))
            try Task.checkCancellation()
        }
    }

    private func poolIsStarting() {
        lifecycle.withLockedValue { $0.poolRuns = true }
        poolStarted.signal()
    }

    /// Returns when ``shutdown()`` asks ``run()`` to stop or the task is cancelled.
    private func waitForStopRequest() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let requested = lifecycle.withLockedValue { state in
                    if !state.stopRequested { state.stopWaiter = continuation }
                    return state.stopRequested
                }
                if requested { continuation.resume() }
            }
        } onCancel: {
            requestStop()
        }
    }

    private func requestStop() {
        let waiter = lifecycle.withLockedValue { state in
            state.stopRequested = true
            defer { state.stopWaiter = nil }
            return state.stopWaiter
        }
        waiter?.resume()
    }

    /// Marks the storage shut down and releases everyone waiting on it.
    private func finish() {
        let (subscribers, listeningWaiters, finishedWaiters) = lifecycle.withLockedValue { state in
            state.isShutDown = true
            if state.isRunning { state.isFinished = true }
            state.isListening = false
            state.sendsNotices = false
            defer {
                state.subscribers = [:]
                state.listeningWaiters = []
                if state.isFinished { state.finishedWaiters = [] }
            }
            return (
                Array(state.subscribers.values), state.listeningWaiters, state.isFinished ? state.finishedWaiters : []
            )
        }
        for subscriber in subscribers { subscriber.finish() }
        for waiter in listeningWaiters {
            waiter.resume(throwing: EventStoreError(.storageUnavailable, message: "The PostgreSQL event storage is shut down."))
        }
        for waiter in finishedWaiters { waiter.resume() }
    }

    // MARK: The notification listener

    /// Listens on the notification channel while ``run()`` runs: every notification of this
    /// schema (and one after reconnecting, since some may have been missed) wakes
    /// ``waitForOutboxChange(timeout:)`` and yields on every stream of ``outboxNotifications()``.
    private func listenForOutboxChanges() async {
        let channel = configuration.notificationChannel
        let payload = configuration.schema
        var listening = false
        while !Task.isCancelled {
            do {
                try await runningClient().withConnection { connection in
                    try await connection.listen(on: channel) { notifications in
                        if listening {
                            self.outboxDidChange()  // some may have been missed while reconnecting
                        }
                        listening = true
                        self.listenerIsReady()
                        for try await notification in notifications where notification.payload == payload {
                            self.outboxDidChange()
                        }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                listenerFailed(Self.storeError(error, configuration: configuration, operation: "listen for outbox notifications"))
                logger.warning(
                    "Cannot listen for outbox notifications; retrying", metadata: ["es.schema": "\(payload)", "error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    private func listenerIsReady() {
        let waiters = lifecycle.withLockedValue { state in
            state.isListening = true
            defer { state.listeningWaiters = [] }
            return state.listeningWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func listenerFailed(_ error: any Error) {
        let waiters = lifecycle.withLockedValue { state in
            state.isListening = false
            defer { state.listeningWaiters = [] }
            return state.listeningWaiters
        }
        for waiter in waiters { waiter.resume(throwing: error) }
    }

    func outboxDidChange() {
        outboxChanged.signal()
        for subscriber in lifecycle.withLockedValue({ Array($0.subscribers.values) }) { subscriber.yield() }
    }

    /// Registers a stream of ``outboxNotifications()`` and returns once `LISTEN` is in place.
    func subscribeToOutboxChanges(_ continuation: AsyncStream<Void>.Continuation) async throws {
        let id = try lifecycle.withLockedValue { state throws in
            guard !state.isShutDown else {
                throw EventStoreError(.storageUnavailable, message: "The PostgreSQL event storage is shut down.")
            }
            guard state.isRunning else {
                throw EventStoreError(
                    .storageUnavailable, message: "Outbox notifications need the storage running: call run() (or withRunning) first.")
            }
            state.nextSubscriberID += 1
            state.subscribers[state.nextSubscriberID] = continuation
            return state.nextSubscriberID
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.lifecycle.withLockedValue { $0.subscribers.removeValue(forKey: id) }
        }
        do {
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
                let listening = lifecycle.withLockedValue { state in
                    if !state.isListening { state.listeningWaiters.append(waiter) }
                    return state.isListening
                }
                if listening { waiter.resume() }
            }
        } catch {
            continuation.finish()
            throw error
        }
    }
}

import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The dedicated thread that owns one rabbitmq-c connection.
///
/// Other threads and tasks only enqueue ``ConnectionJob``s and write one byte to a wake-up
/// pipe; the thread runs the jobs, and while idle blocks in `poll()` on the AMQP socket and
/// the pipe, so heartbeats and deliveries are serviced and enqueued work runs at once.
/// Blocking C calls therefore never run on Swift's cooperative thread pool.
final class ConnectionThread: @unchecked Sendable {
    // Why `@unchecked Sendable` is safe: the mutable state shared between threads lives in
    // `shared`, a `NIOLockedValueBox` (a pthread mutex, which ThreadSanitizer understands). `session` is created in `init` and afterwards touched only by the
    // connection thread (inside `loop()` and the jobs it runs), never concurrently. The pipe
    // descriptors are immutable after `init`, and writing to / reading from a pipe is
    // thread-safe.
    private struct Shared {
        var jobs: [ConnectionJob] = []
        var acknowledgements: [AcknowledgementRequest] = []
        var started = false
        var stopping = false
        var stopped = false
        var wakePending = false
        /// The thread is (about to be) blocked in `poll` and needs a byte on the pipe.
        var blocking = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let shared = NIOLockedValueBox(Shared())
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let session: ConnectionSession

    init(session: ConnectionSession) {
        var fds: [Int32] = [-1, -1]
        let result = pipe(&fds)
        precondition(result == 0, "could not create the wake-up pipe: errno \(errno)")
        wakeRead = fds[0]
        wakeWrite = fds[1]
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        self.session = session
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    /// Enqueues a job, starting the thread on first use. Fails the job if the thread stopped.
    func submit(_ job: ConnectionJob) {
        enum Action { case none, wake, start, fail }
        let action: Action = shared.withLockedValue { shared in
            if shared.stopping || shared.stopped { return .fail }
            shared.jobs.append(job)
            if !shared.started {
                shared.started = true
                return .start
            }
            // Only a thread blocked in poll needs a wake-up; a busy one checks the queue
            // before it blocks again.
            if shared.blocking && !shared.wakePending {
                shared.wakePending = true
                return .wake
            }
            return .none
        }
        switch action {
        case .none: break
        case .wake: wake()
        case .start: startThread()
        case .fail: job.fail(ConnectionStateMachine.Cleanup.closedByApplication.error)
        }
    }

    /// Queues an acknowledgement; it is sent as soon as the thread is free. Dropped if the
    /// thread is not running (the broker requeues unacknowledged messages anyway).
    func submit(_ acknowledgement: AcknowledgementRequest) {
        let wake: Bool = shared.withLockedValue { shared in
            guard shared.started, !shared.stopping, !shared.stopped else { return false }
            shared.acknowledgements.append(acknowledgement)
            if shared.blocking && !shared.wakePending {
                shared.wakePending = true
                return true
            }
            return false
        }
        if wake { self.wake() }
    }

    /// Runs `body` on the connection thread and returns its result. While the connection is
    /// recovering, the work waits for the new connection (unless `waitsForRecovery` is false).
    func perform<T: Sendable>(
        waitsForRecovery: Bool = true, _ body: @escaping @Sendable (ConnectionSession) throws(AMQPError) -> T
    ) async throws(AMQPError) -> T {
        let result: Result<T, AMQPError> = await withCheckedContinuation { continuation in
            let fail: @Sendable (AMQPError) -> Void = { continuation.resume(returning: .failure($0)) }
            // A parked job asks again when it is resumed: the connection may be lost anew.
            @Sendable func attempt(_ session: ConnectionSession) {
                session.runOrPark(ConnectionJob(run: attempt, fail: fail), waitsForRecovery: waitsForRecovery) {
                    do throws(AMQPError) {
                        continuation.resume(returning: .success(try body(session)))
                    } catch {
                        continuation.resume(returning: .failure(error))
                    }
                }
            }
            submit(ConnectionJob(run: attempt, fail: fail))
        }
        return try result.get()
    }

    /// Asks the thread to finish its queued jobs, close the connection and exit; returns
    /// when it has.
    func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let action: (resume: Bool, wake: Bool) = shared.withLockedValue { shared in
                if shared.stopped || !shared.started {
                    shared.stopping = true
                    shared.stopped = true
                    return (true, false)
                }
                shared.stopping = true
                shared.stopWaiters.append(continuation)
                let wake = shared.blocking && !shared.wakePending
                if wake { shared.wakePending = true }
                return (false, wake)
            }
            if action.resume { continuation.resume() }
            if action.wake { wake() }
        }
    }

    /// Asks the thread to stop without waiting for it (used when the owner goes away).
    func requestStop() {
        let wake: Bool = shared.withLockedValue { shared in
            shared.stopping = true
            guard shared.started, !shared.stopped else {
                shared.stopped = true
                return false
            }
            let wake = shared.blocking && !shared.wakePending
            if wake { shared.wakePending = true }
            return wake
        }
        if wake { self.wake() }
    }

    private func startThread() {
        let thread = Thread { [self] in loop() }
        thread.stackSize = 1 << 20
        thread.start()
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func loop() {
        Thread.current.name = "amqp-connection"
        session.wakeDescriptor = wakeRead
        session.beginBlocking = { [self] in
            shared.withLockedValue { shared in
                guard shared.jobs.isEmpty && shared.acknowledgements.isEmpty && !shared.stopping else { return false }
                shared.blocking = true
                return true
            }
        }
        session.endBlocking = { [self] pipeReadable in
            let drain = shared.withLockedValue { shared in
                shared.blocking = false
                let drain = shared.wakePending
                shared.wakePending = false
                return drain
            }
            if drain || pipeReadable { drainWake() }
        }
        var jobs: [ConnectionJob] = []
        var acknowledgements: [AcknowledgementRequest] = []
        while true {
            let stopping = shared.withLockedValue { shared in
                // Swap buffers instead of copying, so no array is reallocated per round.
                swap(&jobs, &shared.jobs)
                swap(&acknowledgements, &shared.acknowledgements)
                return shared.stopping
            }
            if !acknowledgements.isEmpty {
                session.acknowledge(acknowledgements)
                acknowledgements.removeAll(keepingCapacity: true)
            }
            if !jobs.isEmpty {
                session.execute(jobs)
                jobs.removeAll(keepingCapacity: true)
                continue
            }
            if stopping { break }
            session.idle()
        }
        session.shutdown()
        let (waiters, leftover) = shared.withLockedValue { shared in
            shared.stopped = true
            let waiters = shared.stopWaiters
            let leftover = shared.jobs
            shared.stopWaiters = []
            shared.jobs = []
            return (waiters, leftover)
        }
        for job in leftover { job.fail(ConnectionStateMachine.Cleanup.closedByApplication.error) }
        for waiter in waiters { waiter.resume() }
    }

    private func drainWake() {
        var buffer = (0 as UInt64, 0 as UInt64, 0 as UInt64, 0 as UInt64)
        while withUnsafeMutableBytes(of: &buffer, { read(wakeRead, $0.baseAddress, $0.count) }) > 0 {}
    }
}

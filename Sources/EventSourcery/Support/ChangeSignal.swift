import NIOConcurrencyHelpers

/// Wakes tasks waiting for a change, such as a relay waiting for new outbox entries.
///
/// ``signal()`` resumes every current waiter; ``wait(timeout:)`` returns `true` when
/// signalled and `false` when the timeout passed or the task was cancelled. A signal with
/// nobody waiting is not remembered by ``wait(timeout:)``; a caller that must not miss a
/// signal between looking for work and waiting reads ``generation`` before it looks and
/// waits with ``wait(since:timeout:)``.
public final class ChangeSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var nextID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
    }

    private let state = NIOLockedValueBox(State())

    /// Creates a signal.
    public init() {}

    /// How many times ``signal()`` was called.
    public var generation: UInt64 {
        state.withLockedValue { $0.generation }
    }

    /// Resumes every waiting task.
    public func signal() {
        let waiters = state.withLockedValue { state in
            state.generation &+= 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Waits until ``signal()`` is called, `timeout` passes, or the task is cancelled.
    ///
    /// - Returns: `true` when signalled.
    public func wait(timeout: Duration) async -> Bool {
        await wait(since: nil, timeout: timeout)
    }

    /// Waits until ``generation`` differs from `generation` (at once when it already
    /// does), `timeout` passes, or the task is cancelled.
    ///
    /// - Returns: `true` when signalled since `generation`.
    public func wait(since generation: UInt64, timeout: Duration) async -> Bool {
        await wait(since: Optional(generation), timeout: timeout)
    }

    private func wait(since generation: UInt64?, timeout: Duration) async -> Bool {
        let id = state.withLockedValue { state in
            state.nextID += 1
            return state.nextID
        }
        var timer: Task<Void, Never>?
        defer { timer?.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate: Bool? = state.withLockedValue { state in
                    if let generation, state.generation != generation { return true }
                    if Task.isCancelled { return false }
                    state.waiters[id] = continuation
                    return nil
                }
                if let immediate {
                    continuation.resume(returning: immediate)
                    return
                }
                // Started only once the waiter is registered, so the timeout always finds it.
                timer = Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    self?.resume(id, returning: false)
                }
            }
        } onCancel: {
            resume(id, returning: false)
        }
    }

    private func resume(_ id: UInt64, returning value: Bool) {
        state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume(returning: value)
    }
}

public import EventSourceryRabbitMQ
import NIOConcurrencyHelpers

/// Collects a consumer's deliveries in the background, so tests can wait for counts with a
/// deadline.
public final class DeliveryCollector: Sendable {
    private final class State: Sendable {
        let lock = NIOLockedValueBox<(deliveries: [Delivery], error: (any Error)?, finished: Bool)>(([], nil, false))
    }

    private let box = State()
    private let task: Task<Void, Never>

    public init(_ consumer: AMQPConsumer, onDelivery: @escaping @Sendable (Delivery) -> Void = { _ in }) {
        let box = self.box
        task = Task {
            let state = box
            do {
                for try await delivery in consumer.deliveries {
                    state.lock.withLockedValue { $0.deliveries.append(delivery) }
                    onDelivery(delivery)
                }
                state.lock.withLockedValue { $0.finished = true }
            } catch {
                state.lock.withLockedValue {
                    $0.error = error
                    $0.finished = true
                }
            }
        }
    }

    public var deliveries: [Delivery] { box.lock.withLockedValue { $0.deliveries } }
    public var count: Int { box.lock.withLockedValue { $0.deliveries.count } }

    /// Waits until at least `count` deliveries arrived or the timeout passed.
    @discardableResult
    public func waitFor(count: Int, timeout: Duration = .seconds(10)) async -> [Delivery] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if self.count >= count { break }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return deliveries
    }

    public func stop() {
        task.cancel()
    }
}

public import ServiceLifecycle
import NIOConcurrencyHelpers

/// Runs a service's ``HealthProbe``s every ``HealthEndpoint/Configuration/checkInterval``, each
/// on its own so one that hangs does not hold back the others, and keeps their latest
/// results for ``readiness()``.
///
/// A `Service`: it probes from ``run()`` until graceful shutdown, and nothing before.
public final class HealthMonitor: Service, Sendable {
    /// The probes.
    public let probes: [HealthProbe]
    /// How often each probe runs.
    public let interval: Duration
    /// How old the latest result of a check may be before the check counts as failing.
    public let staleAfter: Duration

    private let observations = NIOLockedValueBox<[String: Readiness.Observation]>([:])

    /// Creates a monitor; probing starts with ``run()``.
    public init(probes: [HealthProbe], interval: Duration, staleAfter: Duration) {
        self.probes = probes
        self.interval = interval
        self.staleAfter = staleAfter
    }

    /// Probes until graceful shutdown or cancellation.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for probe in self.probes {
                    group.addTask {
                        while let results = await Self.results(of: probe) {
                            self.record(results)
                            try? await Task.sleep(for: self.interval)
                        }
                    }
                }
            }
        }
    }

    /// Runs `probe` in a task of its own and returns its results, or `nil` once the monitor
    /// is cancelled: a probe waiting on an unresponsive server does not hold up shutdown (it
    /// finishes by itself, at the latest when the connection closes).
    private static func results(of probe: HealthProbe) async -> [CheckResult]? {
        let waiter = Waiter()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                waiter.slot.withLockedValue { $0 = continuation }
                if Task.isCancelled { waiter.resume(nil) }
                Task { waiter.resume(await probe.run()) }
            }
        } onCancel: {
            waiter.resume(nil)
        }
    }

    /// The continuation of one probe run, resumed once: by the probe or by cancellation.
    private final class Waiter: Sendable {
        let slot = NIOLockedValueBox<CheckedContinuation<[CheckResult]?, Never>?>(nil)

        func resume(_ results: [CheckResult]?) {
            slot.withLockedValue { $0.take() }?.resume(returning: results)
        }
    }

    /// Records results as of now.
    func record(_ results: [CheckResult]) {
        let now = ContinuousClock.now
        observations.withLockedValue { observations in
            for result in results {
                observations[result.name] = Readiness.Observation(result, at: now)
            }
        }
    }

    /// Readiness from the latest results (see ``Readiness/evaluate(expected:observations:now:staleAfter:)``).
    public func readiness() -> Readiness {
        Readiness.evaluate(
            expected: probes.flatMap(\.checks), observations: observations.withLockedValue { $0 }, now: .now, staleAfter: staleAfter)
    }
}

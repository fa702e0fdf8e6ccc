public import ServiceLifecycle
import Synchronization

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

    private let observations = Mutex<[String: Readiness.Observation]>([:])

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
                        while !Task.isCancelled {
                            let results = await probe.run()
                            self.record(results)
                            try? await Task.sleep(for: self.interval)
                        }
                    }
                }
            }
        }
    }

    /// Records results as of now.
    func record(_ results: [CheckResult]) {
        let now = ContinuousClock.now
        observations.withLock { observations in
            for result in results {
                observations[result.name] = Readiness.Observation(result, at: now)
            }
        }
    }

    /// Readiness from the latest results (see ``Readiness/evaluate(expected:observations:now:staleAfter:)``).
    public func readiness() -> Readiness {
        Readiness.evaluate(
            expected: probes.flatMap(\.checks), observations: observations.withLock { $0 }, now: .now, staleAfter: staleAfter)
    }
}

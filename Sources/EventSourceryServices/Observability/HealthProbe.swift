/// A health check the ``HealthMonitor`` runs again and again: it reports the results of the
/// checks it names (one probe may decide several, e.g. `store` and `relay` from one read).
public struct HealthProbe: Sendable {
    /// The names of the checks it reports.
    public var checks: [String]
    /// Runs the probe once. It should not wait long: a result older than the monitor's
    /// staleness limit counts as a failing check.
    public var run: @Sendable () async -> [CheckResult]

    /// Creates a probe reporting `checks`.
    public init(checks: [String], run: @escaping @Sendable () async -> [CheckResult]) {
        self.checks = checks
        self.run = run
    }
}

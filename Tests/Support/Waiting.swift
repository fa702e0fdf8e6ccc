import Testing

/// Polls `condition` every 50 ms until it holds or `timeout` passes; records an issue when
/// it never held. Tests wait for a condition instead of sleeping for a fixed time.
public func waitUntil(timeout: Duration, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within \(timeout)")
            return
        }
        try await Task.sleep(for: .milliseconds(50))
    }
}

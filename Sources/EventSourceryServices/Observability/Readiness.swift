import EventSourceryRabbitMQ
import Foundation

/// The result of one health check: passing, or the problem that makes the service not ready.
public struct CheckResult: Sendable, Equatable {
    /// The check's name: `broker`, `store`, `relay`, `consumer`.
    public var name: String
    /// Why the check fails; `nil` when it passes.
    public var problem: String?

    /// Creates a result; `problem` is `nil` for a passing check.
    public init(_ name: String, problem: String? = nil) {
        self.name = name
        self.problem = problem
    }

    /// Whether the relay keeps up: it counts as stalled when the oldest entry that is due has
    /// waited longer than `stallAfter`.
    ///
    /// - Parameter oldestDueAge: How long the oldest due entry has waited; `nil` when none is due.
    public static func relay(oldestDueAge: Duration?, stallAfter: Duration) -> CheckResult {
        guard let oldestDueAge, oldestDueAge > stallAfter else { return CheckResult("relay") }
        return CheckResult(
            "relay",
            problem:
                "stalled: the oldest due outbox entry has waited \(Int(oldestDueAge.seconds)) s, more than \(Int(stallAfter.seconds)) s")
    }

    /// Whether a consumer is subscribed to `queue`, given the broker's count of its consumers.
    public static func consumer(queue: String, consumers: UInt32) -> CheckResult {
        consumers > 0 ? CheckResult("consumer") : CheckResult("consumer", problem: "no consumer is subscribed to \(queue)")
    }
}

/// Whether a service is ready, decided from the latest result of each of its checks.
public struct Readiness: Sendable, Equatable {
    /// The latest result of one check and when it was taken.
    public struct Observation: Sendable, Equatable {
        /// The result.
        public var result: CheckResult
        /// When the check finished.
        public var at: ContinuousClock.Instant

        /// Creates an observation.
        public init(_ result: CheckResult, at: ContinuousClock.Instant) {
            self.result = result
            self.at = at
        }
    }

    /// Every expected check by name: `nil` when it passes, else why it does not.
    public var checks: [String: String?]

    /// Whether every check passes.
    public var isReady: Bool { checks.values.allSatisfy { $0 == nil } }

    /// The problems, `name: problem`, sorted by check name.
    public var reasons: [String] {
        checks.keys.sorted().compactMap { name in checks[name].flatMap { $0 }.map { "\(name): \($0)" } }
    }

    /// Decides readiness: every check in `expected` must have a result no older than
    /// `staleAfter` at `now`, and it must pass. A check without a result has not finished
    /// yet (the service is starting, or the check hangs on an unresponsive server).
    public static func evaluate(
        expected: [String], observations: [String: Observation], now: ContinuousClock.Instant, staleAfter: Duration
    ) -> Readiness {
        var checks: [String: String?] = [:]
        for name in expected {
            guard let observation = observations[name] else {
                checks[name] = .some("no result yet")
                continue
            }
            let age = now - observation.at
            if age > staleAfter {
                checks[name] = .some("no result for \(Int(age.seconds)) s; the check does not finish")
            } else {
                checks[name] = .some(observation.result.problem)
            }
        }
        return Readiness(checks: checks)
    }

    /// The JSON body of `/health/ready`: `{"checks":{"broker":"ok",…},"reasons":[…],"status":"ready"}`
    /// with `"not ready"` and the problems when a check fails; keys sorted.
    public var json: String {
        struct Body: Encodable {
            var checks: [String: String]
            var reasons: [String]
            var status: String
        }
        let body = Body(
            checks: checks.mapValues { $0 ?? "ok" }, reasons: reasons, status: isReady ? "ready" : "not ready")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(body)).map { String(decoding: $0, as: UTF8.self) } ?? "{\"status\":\"not ready\"}"
    }
}

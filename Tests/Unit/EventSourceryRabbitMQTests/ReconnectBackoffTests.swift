import EventSourceryRabbitMQ
import Testing

@Suite struct ReconnectBackoffTests {
    @Test func growsExponentiallyUpToTheCap() {
        let backoff = ReconnectBackoff(initialDelay: .milliseconds(100), maximumDelay: .seconds(2), multiplier: 2, jitter: 0.5)
        let delays = (0..<8).map { backoff.delay(forAttempt: $0, randomFraction: 0) }
        #expect(
            delays == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600), .seconds(2),
                .seconds(2), .seconds(2),
            ])
    }

    @Test func jitterReducesTheDelayByAtMostTheFraction() {
        let backoff = ReconnectBackoff(initialDelay: .seconds(1), maximumDelay: .seconds(10), multiplier: 2, jitter: 0.5)
        #expect(backoff.delay(forAttempt: 0, randomFraction: 1) == .milliseconds(500))
        #expect(backoff.delay(forAttempt: 0, randomFraction: 0.5) == .milliseconds(750))
        for _ in 0..<100 {
            let delay = backoff.delay(forAttempt: 2)
            #expect(delay >= .seconds(2) && delay <= .seconds(4))
        }
    }

    @Test func hugeAttemptCountsStayCapped() {
        let backoff = ReconnectBackoff()
        #expect(backoff.delay(forAttempt: 10_000, randomFraction: 0) == .seconds(5))
        #expect(backoff.delay(forAttempt: -3, randomFraction: 0) == .milliseconds(100))
    }
}

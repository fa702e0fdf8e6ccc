import EventSourceryRabbitMQ
import Testing

/// `validate()` of the connection's configuration and of the backoff: a typed error naming
/// the field, never a crash or a silently corrected value.
struct ConnectionConfigurationTests {
    private func field(_ body: () throws(AMQPError) -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            #expect(error.code == .invalidArgument)
            return error.field
        }
    }

    @Test func theDefaultsAreValid() throws {
        try AMQPConnection.Configuration().validate()
        try ReconnectBackoff().validate()
    }

    @Test func aHeartbeatOutsideTheProtocolsRangeIsRejected() {
        for heartbeat: Duration in [.seconds(-5), .seconds(70000), .milliseconds(1500)] {
            var configuration = AMQPConnection.Configuration()
            configuration.heartbeat = heartbeat
            #expect(field(configuration.validate) == "heartbeat")
        }
        #expect(throws: AMQPError.self) { try AMQPConnection.Configuration(url: "amqp://127.0.0.1/?heartbeat=70000") }
    }

    @Test func otherFieldsAreChecked() {
        var configuration = AMQPConnection.Configuration(port: 0)
        #expect(field(configuration.validate) == "port")
        configuration = AMQPConnection.Configuration(connectTimeout: .zero)
        #expect(field(configuration.validate) == "connectTimeout")
        configuration = AMQPConnection.Configuration(frameMax: 100)
        #expect(field(configuration.validate) == "frameMax")
        configuration = AMQPConnection.Configuration(recovery: .init(maximumAttempts: 0))
        #expect(field(configuration.validate) == "recovery.maximumAttempts")
        configuration = AMQPConnection.Configuration(recovery: .init(backoff: ReconnectBackoff(jitter: 2)))
        #expect(field(configuration.validate) == "recovery.backoff.jitter")
    }

    @Test func aBackoffIsCheckedNotClamped() {
        #expect(field(ReconnectBackoff(initialDelay: .milliseconds(-1)).validate) == "initialDelay")
        #expect(field(ReconnectBackoff(initialDelay: .seconds(2), maximumDelay: .seconds(1)).validate) == "maximumDelay")
        let backoff = ReconnectBackoff(multiplier: 0.5)
        #expect(backoff.multiplier == 0.5)
        #expect(field(backoff.validate) == "multiplier")
        do {
            try ReconnectBackoff(jitter: -0.1).validate()
        } catch {
            #expect(error.message == "jitter must be within 0...1, got -0.1")
        }
    }
}

@testable import EventSourceryRabbitMQ
import Testing

/// Comma-separated endpoint lists in `AMQPConnection.Configuration(url:)`.
@Suite struct AMQPEndpointListTests {
    typealias Endpoint = AMQPConnection.Configuration.Endpoint

    @Test func hostsShareTheSchemeCredentialsVhostAndQuery() throws {
        let configuration = try AMQPConnection.Configuration(url: "amqp://u:p%40ss@node1:5672,node2:5673, node3/orders?heartbeat=5")
        #expect(
            configuration.endpoints == [
                Endpoint(host: "node1", port: 5672, user: "u", password: "p@ss"),
                Endpoint(host: "node2", port: 5673, user: "u", password: "p@ss"),
                Endpoint(host: "node3", port: 5672, user: "u", password: "p@ss"),
            ])
        #expect(configuration.host == "node1" && configuration.port == 5672)
        #expect(configuration.additionalEndpoints.count == 2)
        #expect(configuration.vhost == "orders")
        #expect(configuration.heartbeat == .seconds(5))
    }

    @Test func wholeURLsMayMixTLSAndCredentials() throws {
        let configuration = try AMQPConnection.Configuration(
            url: "amqp://a:1@node1:5672/v,amqps://b:2@node2,[::1]:5680/v?cacertfile=/ca.pem")
        #expect(configuration.endpoints.map(\.address) == ["node1:5672", "node2:5671", "[::1]:5680"])
        #expect(configuration.endpoints.map(\.user) == ["a", "b", "b"])
        #expect(configuration.endpoints.map { $0.tls?.caFile } == [nil, "/ca.pem", "/ca.pem"])
        #expect(configuration.vhost == "v")
        #expect(configuration.tls == nil)
    }

    @Test func oneURLHasNoAdditionalEndpoints() throws {
        let configuration = try AMQPConnection.Configuration(url: "amqp://guest:guest@127.0.0.1:5673/")
        #expect(configuration.endpoints == [Endpoint(host: "127.0.0.1", port: 5673)])
        #expect(configuration.additionalEndpoints.isEmpty)
    }

    @Test(arguments: [
        ("amqp://h1,", "endpoint 2 of the AMQP URL list: is empty"),
        ("node1,amqp://h2", "endpoint 1 of the AMQP URL list: \"node1\" must start with amqp:// or amqps://"),
        ("amqp://h1,h2:99999/v", "endpoint 2 of the AMQP URL list: \"h2:99999/v\": invalid port"),
        ("amqp://h1,h2:x,h3", "endpoint 2 of the AMQP URL list: \"h2:x\": invalid port"),
        ("amqp://h1/v,h2", "endpoint 1 of the AMQP URL list: \"amqp://h1/v\": only the last host"),
        ("amqp://h1,h2/v,h3", "endpoint 2 of the AMQP URL list: \"h2/v\": only the last host"),
        ("amqp://h1,u:p@h2", "endpoint 2 of the AMQP URL list: \"u:p@h2\": a host without a scheme takes the credentials"),
        ("amqp://h1/a,amqp://h2/b", "endpoint 2 of the AMQP URL list: \"amqp://h2/b\" names the vhost \"b\""),
        ("amqp://h1,http://h2", "endpoint 2 of the AMQP URL list: \"http://h2\" must start with amqp:// or amqps://"),
        ("amqp://h1,amqp://h2?bogus=1", "endpoint 2 of the AMQP URL list: unknown query parameter bogus"),
    ])
    func aBadEntryIsNamed(url: String, message: String) {
        #expect {
            try AMQPConnection.Configuration(url: url)
        } throws: { error in
            guard let error = error as? AMQPError else { return false }
            return error.code == .invalidURL && error.message.hasPrefix(message)
        }
    }

    @Test func validateNamesTheBadAdditionalEndpoint() {
        var configuration = AMQPConnection.Configuration()
        configuration.additionalEndpoints = [Endpoint(host: "b"), Endpoint(host: "c", port: 0)]
        #expect {
            try configuration.validate()
        } throws: { error in
            (error as? AMQPError)?.field == "additionalEndpoints[1].port"
        }
        configuration.additionalEndpoints[1] = Endpoint(host: "")
        #expect {
            try configuration.validate()
        } throws: { error in
            (error as? AMQPError)?.field == "additionalEndpoints[1].host"
        }
    }
}

@testable import EventSourceryRabbitMQ
import Testing

@Suite struct AMQPURLParserTests {
    @Test func parsesAllParts() throws {
        let configuration = try AMQPConnection.Configuration(
            url: "amqp://user%40x:p%3Ass@broker.local:5673/my%2Fvhost?heartbeat=5&connection_timeout=2500&channel_max=10&frame_max=65536")
        #expect(configuration.user == "user@x")
        #expect(configuration.password == "p:ss")
        #expect(configuration.host == "broker.local")
        #expect(configuration.port == 5673)
        #expect(configuration.vhost == "my/vhost")
        #expect(configuration.heartbeat == .seconds(5))
        #expect(configuration.connectTimeout == .milliseconds(2500))
        #expect(configuration.channelMax == 10)
        #expect(configuration.frameMax == 65536)
        #expect(configuration.tls == nil)
    }

    @Test func defaults() throws {
        let configuration = try AMQPConnection.Configuration(url: "amqp://localhost")
        #expect(configuration.user == "guest")
        #expect(configuration.password == "guest")
        #expect(configuration.port == 5672)
        #expect(configuration.vhost == "/")
        #expect(try AMQPConnection.Configuration(url: "amqp://guest:guest@127.0.0.1:5673/").vhost == "/")
        #expect(try AMQPConnection.Configuration(url: "amqp://h/%2f").vhost == "/")
        #expect(try AMQPConnection.Configuration(url: "amqp://h/es-test").vhost == "es-test")
    }

    @Test func tlsScheme() throws {
        let configuration = try AMQPConnection.Configuration(url: "amqps://h?cacertfile=/ca.pem&certfile=/c.pem&keyfile=/k.pem")
        #expect(configuration.port == 5671)
        #expect(configuration.tls?.caFile == "/ca.pem")
        #expect(configuration.tls?.certificateFile == "/c.pem")
        #expect(configuration.tls?.keyFile == "/k.pem")
        #expect(configuration.tls?.verifyPeer == true)
        #expect(try AMQPConnection.Configuration(url: "amqps://h?verify=verify_none").tls?.verifyPeer == false)
    }

    @Test func ipv6Host() throws {
        let configuration = try AMQPConnection.Configuration(url: "amqp://[::1]:5673/v")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 5673)
    }

    @Test(arguments: [
        "http://h/", "amqp://h:99999/", "amqp://h:x/", "amqp://h/%zz", "amqp://h/?bogus=1", "amqp://h/?heartbeat=-1", "amqp://[::1/",
    ])
    func rejectsInvalid(url: String) {
        #expect {
            try AMQPConnection.Configuration(url: url)
        } throws: { error in
            (error as? AMQPError)?.code == .invalidURL
        }
    }
}

import Foundation
import Glibc
public import Testing

/// Whether the servers of the integration and system tiers are reachable: the test broker
/// (`AMQP_URL`, default the private node of `scripts/rabbitmq`) and the test database
/// (`POSTGRES_URL`, default the private cluster of `scripts/postgres`).
///
/// Suites that need a server carry ``Testing/Trait/requiresBroker`` or
/// ``Testing/Trait/requiresPostgres``; without the server they are skipped, and one line on
/// standard error says what to start.
public enum TestServers {
    public static let brokerReachable = reachable(
        TestBroker.url, defaultPort: 5672, what: "RabbitMQ", start: "scripts/rabbitmq start, or set AMQP_URL")
    public static let postgresReachable = reachable(
        TestDatabase.url, defaultPort: 5432, what: "PostgreSQL", start: "scripts/postgres start, or set POSTGRES_URL")

    private static func reachable(_ url: String, defaultPort: Int, what: String, start: String) -> Bool {
        let components = URLComponents(string: url.split(separator: ",").first.map(String.init) ?? url)
        let host = components?.host ?? "127.0.0.1"
        let port = components?.port ?? defaultPort
        if canConnect(host: host, port: port) { return true }
        let line = "note: skipping the tests that need \(what): nothing answers at \(host):\(port) (start it: \(start))\n"
        FileHandle.standardError.write(Data(line.utf8))
        return false
    }

    /// A TCP connection to `host:port` succeeds within a second.
    private static func canConnect(host: String, port: Int) -> Bool {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else { return false }
        defer { freeaddrinfo(result) }
        var address = first
        while true {
            let socket = Glibc.socket(address.pointee.ai_family, address.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue), 0)
            if socket >= 0 {
                defer { close(socket) }
                if connect(socket, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 { return true }
                if errno == EINPROGRESS {
                    var descriptor = pollfd(fd: socket, events: Int16(POLLOUT), revents: 0)
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    if poll(&descriptor, 1, 1000) == 1, getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 {
                        return true
                    }
                }
            }
            guard let next = address.pointee.ai_next else { return false }
            address = next
        }
    }
}

extension Trait where Self == ConditionTrait {
    /// The suite talks to the test broker; skipped when none is reachable.
    public static var requiresBroker: Self {
        .enabled(if: TestServers.brokerReachable, "needs RabbitMQ: scripts/rabbitmq start, or set AMQP_URL")
    }

    /// The suite talks to the test database; skipped when none is reachable.
    public static var requiresPostgres: Self {
        .enabled(if: TestServers.postgresReachable, "needs PostgreSQL: scripts/postgres start, or set POSTGRES_URL")
    }
}

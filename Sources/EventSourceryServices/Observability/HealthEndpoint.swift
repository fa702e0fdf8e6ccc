public import Hummingbird
public import Prometheus
public import Logging
public import ServiceLifecycle

/// The HTTP endpoint every service serves for watching it:
///
/// - `GET /health/live` answers `200` with `{"status":"live"}` while the process runs;
/// - `GET /health/ready` answers `200` when every check of its ``HealthMonitor`` passes and
///   `503` otherwise, with the ``Readiness/json`` body naming each check and the reasons;
/// - `GET /metrics` answers the metrics of the process in the Prometheus text format
///   (``MetricName`` lists the bridge's).
public struct HealthEndpoint: Sendable {
    /// Where to serve and how to decide readiness.
    public struct Configuration: Sendable, Equatable {
        /// The address to listen on; loopback by default.
        public var host: String
        /// The port to listen on; `nil` serves no endpoint.
        public var port: Int?
        /// How long the oldest due outbox entry may wait before the relay counts as stalled.
        public var stallAfter: Duration
        /// How often each check runs.
        public var checkInterval: Duration

        /// Creates a configuration; by default no endpoint, loopback, a relay stalled after
        /// 60 s, checks every second.
        public init(
            host: String = "127.0.0.1", port: Int? = nil, stallAfter: Duration = .seconds(60), checkInterval: Duration = .seconds(1)
        ) {
            self.host = host
            self.port = port
            self.stallAfter = stallAfter
            self.checkInterval = checkInterval
        }

        /// How old a check's latest result may be: three intervals and two seconds.
        public var staleAfter: Duration { checkInterval * 3 + .seconds(2) }
    }

    /// The content type of the Prometheus text format.
    public static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Decides readiness.
    public let monitor: HealthMonitor
    /// The metrics served on `/metrics`.
    public let registry: PrometheusCollectorRegistry

    /// Creates the endpoint's routes over a monitor and a registry.
    public init(monitor: HealthMonitor, registry: PrometheusCollectorRegistry) {
        self.monitor = monitor
        self.registry = registry
    }

    /// Adds `/health/live`, `/health/ready` and `/metrics` (`GET`) to `router`.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        let monitor = self.monitor
        let registry = self.registry
        router.get("/health/live") { _, _ in
            Self.response(.ok, contentType: "application/json", body: "{\"status\":\"live\"}")
        }
        router.get("/health/ready") { _, _ in
            let readiness = monitor.readiness()
            return Self.response(readiness.isReady ? .ok : .serviceUnavailable, contentType: "application/json", body: readiness.json)
        }
        router.get("/metrics") { _, _ in
            Self.response(.ok, contentType: Self.metricsContentType, body: registry.emitToString())
        }
    }

    /// An HTTP server with only these routes, on `host:port`: a `Service` for the process's
    /// `ServiceGroup`.
    public func application(host: String, port: Int, serverName: String, logger: Logger) -> any Service {
        let router = Router()
        register(on: router)
        return Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: serverName),
            onServerRunning: { _ in
                logger.info("Health and metrics endpoint listening", metadata: ["http.address": "http://\(host):\(port)"])
            },
            logger: logger
        )
    }

    private static func response(_ status: HTTPResponse.Status, contentType: String, body: String) -> Response {
        Response(
            status: status, headers: [.contentType: contentType],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

// Decoding with snake_case keys, `nil` for missing optional keys, and unknown keys rejected.

struct ConfigurationKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer where Key == ConfigurationKey {
    /// Fails on keys outside `allowed`, naming the entry and the keys that are allowed.
    func rejectUnknownKeys(_ allowed: [String]) throws {
        for key in allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: codingPath + [key], debugDescription: "unknown key; allowed here: \(allowed.joined(separator: ", "))")
            )
        }
    }

    func value<T: Decodable>(_ key: String, default value: T) throws -> T {
        try decodeIfPresent(T.self, forKey: ConfigurationKey(key)) ?? value
    }

    func value<T: Decodable>(_ key: String) throws -> T? {
        try decodeIfPresent(T.self, forKey: ConfigurationKey(key))
    }
}

extension ServiceConfiguration: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ConfigurationKey.self)
        try container.rejectUnknownKeys(["broker", "relay", "observability", "tracing", "contexts"])
        broker = try container.value("broker", default: Broker())
        relay = try container.value("relay", default: Relay())
        observability = try container.value("observability", default: Observability())
        tracing = try container.value("tracing", default: Tracing())
        contexts = try container.decode([String: Context].self, forKey: ConfigurationKey("contexts"))
    }
}

extension ServiceConfiguration.Broker: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ConfigurationKey.self)
        try container.rejectUnknownKeys(["url", "urls", "heartbeat_seconds", "wait_for_broker"])
        url = try container.value("url")
        urls = try container.value("urls")
        heartbeatSeconds = try container.value("heartbeat_seconds")
        waitForBroker = try container.value("wait_for_broker", default: Self().waitForBroker)
    }
}

extension ServiceConfiguration.Relay: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ConfigurationKey.self)
        try container.rejectUnknownKeys([
            "batch_size", "window", "lease_seconds", "idle_poll_ms", "linger_ms", "retention_seconds",
            "initial_backoff_ms", "max_backoff_ms", "attempt_limit",
        ])
        batchSize = try container.value("batch_size")
        window = try container.value("window")
        leaseSeconds = try container.value("lease_seconds")
        idlePollMilliseconds = try container.value("idle_poll_ms")
        lingerMilliseconds = try container.value("linger_ms")
        retentionSeconds = try container.value("retention_seconds")
        initialBackoffMilliseconds = try container.value("initial_backoff_ms")
        maximumBackoffMilliseconds = try container.value("max_backoff_ms")
        attemptLimit = try container.value("attempt_limit")
    }
}

extension ServiceConfiguration.Observability: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ConfigurationKey.self)
        try container.rejectUnknownKeys(["host", "port", "stall_seconds"])
        host = try container.value("host")
        port = try container.value("port")
        stallSeconds = try container.value("stall_seconds")
    }
}

extension ServiceConfiguration.Tracing: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ConfigurationKey.self)
        try container.rejectUnknownKeys(["otlp_endpoint"])
        otlpEndpoint = try container.value("otlp_endpoint")
    }
}

extension ServiceConfiguration.Context: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ConfigurationKey.self)
        try container.rejectUnknownKeys([
            "store", "publishes", "handlers", "consumer", "accepts_commands", "command_targets", "deadlines",
        ])
        store = try container.decode(String.self, forKey: ConfigurationKey("store"))
        publishes = try container.value("publishes", default: [])
        handlers = try container.value("handlers", default: [:])
        consumer = try container.value("consumer", default: ServiceConfiguration.Consumer())
        acceptsCommands = try container.value("accepts_commands", default: false)
        commandTargets = try container.value("command_targets", default: [])
        deadlines = try container.value("deadlines", default: [:])
    }
}

extension ServiceConfiguration.Handler: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ConfigurationKey.self)
        try container.rejectUnknownKeys(["subscribes"])
        subscribes = try container.value("subscribes", default: [])
    }
}

extension ServiceConfiguration.Consumer: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ConfigurationKey.self)
        try container.rejectUnknownKeys([
            "prefetch", "delivery_limit", "max_body_bytes", "ack_batch", "concurrency", "batch_size", "initial_backoff_ms",
            "max_backoff_ms", "inbox_retention_seconds", "partitions",
        ])
        prefetch = try container.value("prefetch")
        deliveryLimit = try container.value("delivery_limit")
        maximumBodyBytes = try container.value("max_body_bytes")
        ackBatch = try container.value("ack_batch")
        concurrency = try container.value("concurrency")
        batchSize = try container.value("batch_size")
        initialBackoffMilliseconds = try container.value("initial_backoff_ms")
        maximumBackoffMilliseconds = try container.value("max_backoff_ms")
        inboxRetentionSeconds = try container.value("inbox_retention_seconds")
        partitions = try container.value("partitions")
    }
}

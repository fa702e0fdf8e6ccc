extension AMQPConnection {
    /// Everything needed to open a connection, with documented defaults.
    ///
    /// Build one from an AMQP URI or field by field:
    ///
    /// ```swift
    /// var configuration = try AMQPConnection.Configuration(url: "amqp://guest:guest@127.0.0.1:5673/")
    /// configuration.heartbeat = .seconds(10)
    /// ```
    public struct Configuration: Sendable, Equatable {
        /// TLS settings for `amqps://` connections, applied through rabbitmq-c's OpenSSL socket.
        public struct TLS: Sendable, Equatable {
            /// A PEM file with the certificate authorities that sign the broker's certificate.
            /// `nil` uses none, so peer verification fails unless it is switched off.
            public var caFile: String?
            /// A PEM client certificate, for brokers that require one.
            public var certificateFile: String?
            /// The PEM private key of ``certificateFile``.
            public var keyFile: String?
            /// Whether the broker's certificate chain is verified. Default `true`.
            public var verifyPeer: Bool
            /// Whether the broker's certificate must name the host connected to. Default `true`.
            public var verifyHostname: Bool

            /// Creates TLS settings; peer and host name verification are on by default.
            public init(
                caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, verifyPeer: Bool = true,
                verifyHostname: Bool = true
            ) {
                self.caFile = caFile
                self.certificateFile = certificateFile
                self.keyFile = keyFile
                self.verifyPeer = verifyPeer
                self.verifyHostname = verifyHostname
            }
        }

        /// How a lost connection is re-established.
        public struct Recovery: Sendable, Equatable {
            /// Whether a lost connection is re-opened automatically. Default `true`.
            public var isEnabled: Bool
            /// The delays between attempts. Default: 100 ms doubling up to 5 s, with jitter.
            public var backoff: ReconnectBackoff
            /// Give up after this many failed attempts in a row; `nil` (the default) retries forever.
            public var maximumAttempts: Int?

            /// Creates a recovery policy; ``AMQPConnection/Configuration/validate()`` checks it.
            public init(isEnabled: Bool = true, backoff: ReconnectBackoff = ReconnectBackoff(), maximumAttempts: Int? = nil) {
                self.isEnabled = isEnabled
                self.backoff = backoff
                self.maximumAttempts = maximumAttempts
            }

            /// Never reconnect: a lost connection fails pending and later operations.
            public static let disabled = Recovery(isEnabled: false)
        }

        /// The broker's host name or address. Default `127.0.0.1`.
        public var host: String
        /// The broker's port. Default 5672 (5671 for TLS).
        public var port: Int
        /// The user name. Default `guest`.
        public var user: String
        /// The password. Default `guest`.
        public var password: String
        /// The virtual host. Default `/`.
        public var vhost: String
        /// The heartbeat interval asked for; the broker may lower it. `.zero` disables
        /// heartbeats. Default 60 seconds.
        public var heartbeat: Duration
        /// The limit for the TCP connect and for the AMQP handshake. Default 10 seconds.
        public var connectTimeout: Duration
        /// The highest channel number asked for; 0 accepts the broker's limit. Default 0.
        public var channelMax: UInt16
        /// The largest frame size asked for, in bytes. Default 131072.
        public var frameMax: UInt32
        /// TLS settings; `nil` for a plain TCP connection.
        public var tls: TLS?
        /// A name shown in the broker's management UI for this connection.
        public var connectionName: String?
        /// How a lost connection is re-established.
        public var recovery: Recovery

        /// Creates a configuration field by field. ``AMQPConnection/connect()`` checks it with
        /// ``validate()``; call that yourself to fail before connecting.
        public init(
            host: String = "127.0.0.1",
            port: Int? = nil,
            user: String = "guest",
            password: String = "guest",
            vhost: String = "/",
            heartbeat: Duration = .seconds(60),
            connectTimeout: Duration = .seconds(10),
            channelMax: UInt16 = 0,
            frameMax: UInt32 = 131_072,
            tls: TLS? = nil,
            connectionName: String? = nil,
            recovery: Recovery = Recovery()
        ) {
            self.host = host
            self.port = port ?? (tls == nil ? 5672 : 5671)
            self.user = user
            self.password = password
            self.vhost = vhost
            self.heartbeat = heartbeat
            self.connectTimeout = connectTimeout
            self.channelMax = channelMax
            self.frameMax = frameMax
            self.tls = tls
            self.connectionName = connectionName
            self.recovery = recovery
        }

        /// Creates a configuration from an AMQP URI.
        ///
        /// The form is `amqp[s]://[user[:password]@]host[:port][/vhost][?query]`. User,
        /// password and vhost are percent-decoded (`%2F` is `/`). A missing vhost, or a path
        /// of just `/`, selects the default vhost `/`. The query may set `heartbeat` (seconds),
        /// `connection_timeout` (milliseconds), `channel_max`, `frame_max`, and for `amqps`
        /// `cacertfile`, `certfile`, `keyfile` and `verify=verify_none`.
        ///
        /// - Parameter url: The URI.
        /// - Throws: ``AMQPError`` with code ``AMQPError/Code/invalidURL``, or
        ///   ``AMQPError/Code/invalidArgument`` when a query parameter is out of range (see ``validate()``).
        public init(url: String) throws(AMQPError) {
            let parsed = try AMQPURLParser.parse(url)
            self.init(
                host: parsed.host,
                port: parsed.port,
                user: parsed.user ?? "guest",
                password: parsed.password ?? "guest",
                vhost: parsed.vhost,
                tls: parsed.isTLS ? TLS() : nil
            )
            for (key, value) in parsed.query {
                func number() throws(AMQPError) -> Int {
                    guard let number = Int(value), number >= 0 else {
                        throw AMQPError(.invalidURL, "query parameter \(key) must be a non-negative integer, got \"\(value)\"")
                    }
                    return number
                }
                switch key {
                case "heartbeat": heartbeat = .seconds(try number())
                case "connection_timeout": connectTimeout = .milliseconds(try number())
                case "channel_max": channelMax = UInt16(clamping: try number())
                case "frame_max": frameMax = UInt32(clamping: try number())
                case "cacertfile": tls?.caFile = value
                case "certfile": tls?.certificateFile = value
                case "keyfile": tls?.keyFile = value
                case "verify": tls?.verifyPeer = value != "verify_none"
                case "server_name_indication", "auth_mechanism": break
                default:
                    throw AMQPError(.invalidURL, "unknown query parameter \(key) in the AMQP URL")
                }
            }
            try validate()
        }

        /// Checks every field: a host, a port within 1...65535, a heartbeat of whole seconds
        /// within 0...65535 (the protocol's range), a positive connect timeout, a frame size within
        /// 4096...2³¹−1 bytes (rabbitmq-c's range), a positive attempt limit for recovery and
        /// its backoff (see ``ReconnectBackoff/validate()``).
        ///
        /// - Throws: ``AMQPError`` ``AMQPError/Code/invalidArgument`` naming the ``AMQPError/field``,
        ///   e.g. `heartbeat`.
        public func validate() throws(AMQPError) {
            guard !host.isEmpty else { throw .invalidField("host", "must name the broker's host") }
            guard (1...65535).contains(port) else { throw .invalidField("port", "must be within 1...65535, got \(port)") }
            let (heartbeatSeconds, heartbeatFraction) = heartbeat.components
            guard (0...65535).contains(heartbeatSeconds), heartbeatFraction == 0 else {
                throw .invalidField("heartbeat", "must be whole seconds within 0...65535, got \(heartbeat)")
            }
            guard connectTimeout > .zero else { throw .invalidField("connectTimeout", "must be positive, got \(connectTimeout)") }
            guard (4096...UInt32(Int32.max)).contains(frameMax) else {
                throw .invalidField("frameMax", "must be within 4096...\(Int32.max) bytes, got \(frameMax)")
            }
            if let maximumAttempts = recovery.maximumAttempts, maximumAttempts <= 0 {
                throw .invalidField("recovery.maximumAttempts", "must be positive or nil, got \(maximumAttempts)")
            }
            do {
                try recovery.backoff.validate()
            } catch {
                throw error.nested(under: "recovery.backoff")
            }
        }
    }
}

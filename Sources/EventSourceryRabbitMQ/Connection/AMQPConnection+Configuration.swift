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

        /// One broker node to connect to: its address, the credentials it accepts and its TLS
        /// settings. A configuration's ``AMQPConnection/Configuration/endpoints`` are the nodes
        /// of a cluster; the connection uses one at a time.
        public struct Endpoint: Sendable, Equatable {
            /// The node's host name or address.
            public var host: String
            /// The node's port.
            public var port: Int
            /// The user name.
            public var user: String
            /// The password.
            public var password: String
            /// TLS settings; `nil` for a plain TCP connection.
            public var tls: TLS?

            /// Creates an endpoint; the port defaults to 5672 (5671 with TLS).
            public init(host: String, port: Int? = nil, user: String = "guest", password: String = "guest", tls: TLS? = nil) {
                self.host = host
                self.port = port ?? (tls == nil ? 5672 : 5671)
                self.user = user
                self.password = password
                self.tls = tls
            }

            /// `host:port`, for messages and logs.
            public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
        }

        /// How a lost connection is re-established.
        public struct Recovery: Sendable, Equatable {
            /// Whether a lost connection is re-opened automatically. Default `true`.
            public var isEnabled: Bool
            /// The delays between attempts. Default: 100 ms doubling up to 5 s, with jitter.
            public var backoff: ReconnectBackoff
            /// Give up after this many failed attempts in a row; `nil` (the default) retries forever.
            /// With several ``AMQPConnection/Configuration/endpoints`` an attempt tries each of
            /// them once.
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
        /// Further nodes of the broker's cluster besides ``host``/``port``; see ``endpoints``. Default none.
        public var additionalEndpoints: [Endpoint]

        /// Every node to connect to: ``host``, ``port``, ``user``, ``password`` and ``tls``
        /// first, then ``additionalEndpoints``.
        ///
        /// The connection tries them in a shuffled order, so that the connections of several
        /// replicas spread over the nodes. When the connection is lost, or a node cannot be
        /// reached, it moves on to the next node; once every node failed in a row it waits out
        /// the ``Recovery/backoff`` before the next round.
        public var endpoints: [Endpoint] {
            [Endpoint(host: host, port: port, user: user, password: password, tls: tls)] + additionalEndpoints
        }

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
            recovery: Recovery = Recovery(),
            additionalEndpoints: [Endpoint] = []
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
            self.additionalEndpoints = additionalEndpoints
        }

        /// Creates a configuration from an AMQP URI, or from a list of them for a cluster.
        ///
        /// The form is `amqp[s]://[user[:password]@]host[:port][/vhost][?query]`. User,
        /// password and vhost are percent-decoded (`%2F` is `/`). A missing vhost, or a path
        /// of just `/`, selects the default vhost `/`. The query may set `heartbeat` (seconds),
        /// `connection_timeout` (milliseconds), `channel_max`, `frame_max`, and for `amqps`
        /// `cacertfile`, `certfile`, `keyfile` and `verify=verify_none`.
        ///
        /// For a cluster, list the nodes separated by commas, either as hosts sharing the
        /// scheme, credentials, vhost and query (`amqp://user:pass@host1:5672,host2:5673/vhost`)
        /// or as whole URIs, which may mix `amqp` and `amqps` and carry their own credentials
        /// (`amqp://a:5672/vhost,amqps://b:5671/vhost?cacertfile=/ca.pem`). Every entry must
        /// name the same vhost. The first node becomes ``host``/``port``, the others
        /// ``additionalEndpoints``; see ``endpoints``.
        ///
        /// - Parameter url: The URI, or the comma-separated list.
        /// - Throws: ``AMQPError`` with code ``AMQPError/Code/invalidURL`` (naming the entry of a
        ///   list that is wrong), or ``AMQPError/Code/invalidArgument`` when a query parameter is
        ///   out of range (see ``validate()``).
        public init(url: String) throws(AMQPError) {
            let entries = try AMQPURLParser.parseList(url)
            self.init()
            var endpoints: [Endpoint] = []
            for (index, parsed) in entries.enumerated() {
                var endpoint = Endpoint(
                    host: parsed.host, port: parsed.port, user: parsed.user ?? "guest", password: parsed.password ?? "guest",
                    tls: parsed.isTLS ? TLS() : nil)
                do {
                    try apply(parsed.query, to: &endpoint)
                } catch {
                    throw entries.count == 1 ? error : AMQPURLParser.entryError(index, error.message)
                }
                endpoints.append(endpoint)
            }
            vhost = entries[0].vhost
            setEndpoints(endpoints)
            try validate()
        }

        /// Applies the query parameters of a URI: connection-wide limits to `self`, TLS files
        /// to `endpoint`.
        private mutating func apply(_ query: [(String, String)], to endpoint: inout Endpoint) throws(AMQPError) {
            for (key, value) in query {
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
                case "cacertfile": endpoint.tls?.caFile = value
                case "certfile": endpoint.tls?.certificateFile = value
                case "keyfile": endpoint.tls?.keyFile = value
                case "verify": endpoint.tls?.verifyPeer = value != "verify_none"
                case "server_name_indication", "auth_mechanism": break
                default:
                    throw AMQPError(.invalidURL, "unknown query parameter \(key) in the AMQP URL")
                }
            }
        }

        /// Replaces every endpoint: the first sets ``host``, ``port``, ``user``, ``password``
        /// and ``tls``, the rest become ``additionalEndpoints``.
        private mutating func setEndpoints(_ endpoints: [Endpoint]) {
            let first = endpoints[0]
            host = first.host
            port = first.port
            user = first.user
            password = first.password
            tls = first.tls
            additionalEndpoints = Array(endpoints.dropFirst())
        }

        /// Checks every field: a host and a port within 1...65535 for every endpoint, a heartbeat of whole seconds
        /// within 0...65535 (the protocol's range), a positive connect timeout, a frame size within
        /// 4096...2³¹−1 bytes (rabbitmq-c's range), a positive attempt limit for recovery and
        /// its backoff (see ``ReconnectBackoff/validate()``).
        ///
        /// - Throws: ``AMQPError`` ``AMQPError/Code/invalidArgument`` naming the ``AMQPError/field``,
        ///   e.g. `heartbeat`.
        public func validate() throws(AMQPError) {
            guard !host.isEmpty else { throw .invalidField("host", "must name the broker's host") }
            guard (1...65535).contains(port) else { throw .invalidField("port", "must be within 1...65535, got \(port)") }
            for (index, endpoint) in additionalEndpoints.enumerated() {
                let field = "additionalEndpoints[\(index)]"
                guard !endpoint.host.isEmpty else { throw .invalidField("\(field).host", "must name the broker's host") }
                guard (1...65535).contains(endpoint.port) else {
                    throw .invalidField("\(field).port", "must be within 1...65535, got \(endpoint.port)")
                }
            }
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

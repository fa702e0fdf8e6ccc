public import EventSourceryRabbitMQ

extension OutboxRelay {
    /// Settings of an ``OutboxRelay``.
    public struct Configuration: Sendable {
        /// The longest ``linger`` ``validate()`` accepts.
        public static let maximumLinger: Duration = .seconds(1)

        /// The bounded context whose outbox is relayed: it names the exchange (`<context>.events`),
        /// the routing keys and the `app_id`.
        public var context: String
        /// Entries claimed and published per round.
        public var batchSize: Int
        /// How long claimed entries stay reserved for this relay; another replica (or the
        /// relay that replaces this one) takes them over only after that, if this one died.
        /// The relay renews the leases of its batch every third of it while the batch is in
        /// flight, so a short lease costs no duplicates; the default of 1 s lets a restarted
        /// relay publish what its dead predecessor had claimed within about a second.
        public var leaseDuration: Duration
        /// Retry and parking of entries the broker refuses.
        public var retry: RetryPolicy
        /// The longest the relay sleeps when it gets no wake-up signal from the storage.
        public var idlePollInterval: Duration
        /// How long published entries are kept before housekeeping deletes them; `nil` keeps them.
        public var retention: Duration?
        /// How often housekeeping runs.
        public var housekeepingInterval: Duration
        /// How long a busy relay waits before its next round, so that round takes what the
        /// commits of that time wrote; `.zero` (the default) claims at once.
        ///
        /// The relay lingers only when its last round published something and new entries were
        /// already waiting when it finished (they were committed while the round ran): under a
        /// steady load, not after a quiet spell. Fewer, larger rounds cost less per message —
        /// a quorum queue pays per write batch, not per message (`eventsourcery-bench broker`:
        /// about 450 µs of broker CPU per message one at a time, about 50 µs a hundred at a
        /// time), and each round's claims and marks are one transaction each — at the price of
        /// up to this much latency per hop. docs/BENCHMARKS.md has the measured trade-off.
        public var linger: Duration

        /// Creates a configuration with defaults suited to most deployments. ``OutboxRelay``
        /// checks it with ``validate()`` before it runs; call that yourself to fail earlier.
        public init(
            context: String,
            batchSize: Int = 500,
            leaseDuration: Duration = .seconds(1),
            retry: RetryPolicy = RetryPolicy(),
            idlePollInterval: Duration = .seconds(1),
            retention: Duration? = .seconds(3600),
            housekeepingInterval: Duration = .seconds(60),
            linger: Duration = .zero
        ) {
            self.context = context
            self.batchSize = batchSize
            self.leaseDuration = leaseDuration
            self.retry = retry
            self.idlePollInterval = idlePollInterval
            self.retention = retention
            self.housekeepingInterval = housekeepingInterval
            self.linger = linger
        }

        /// Checks every field: a context name, a positive batch size, positive lease, idle poll
        /// and housekeeping intervals, a retention of zero or more, a linger from zero to one
        /// second, and the retry policy (see ``RetryPolicy/validate()``).
        ///
        /// - Throws: ``AMQPError`` ``AMQPError/Code/invalidArgument`` naming the
        ///   ``AMQPError/field``, e.g. `leaseDuration` or `retry.backoff.maximumDelay`.
        public func validate() throws(AMQPError) {
            guard !context.isEmpty else { throw .invalidField("context", "must name the context") }
            guard batchSize > 0 else { throw .invalidField("batchSize", "must be positive, got \(batchSize)") }
            for (field, value) in [
                ("leaseDuration", leaseDuration), ("idlePollInterval", idlePollInterval), ("housekeepingInterval", housekeepingInterval),
            ] where value <= .zero {
                throw .invalidField(field, "must be positive, got \(value)")
            }
            if let retention, retention < .zero { throw .invalidField("retention", "must not be negative, got \(retention)") }
            guard linger >= .zero, linger <= Self.maximumLinger else {
                throw .invalidField("linger", "must be from 0 to \(Self.maximumLinger), got \(linger)")
            }
            do {
                try retry.validate()
            } catch {
                throw error.nested(under: "retry")
            }
        }
    }

    /// Whether a relay waits ``Configuration/linger`` before its next round: only when
    /// lingering is configured, the last round claimed entries, and the wait for new ones
    /// ended at once (within ``busyWake``: they were committed while that round ran).
    static func lingers(_ linger: Duration, lastRoundClaimed: Int, waited: Duration) -> Bool {
        linger > .zero && lastRoundClaimed > 0 && waited < busyWake
    }

    /// A wait for new entries this short found them already committed.
    static let busyWake: Duration = .microseconds(200)

    /// What a relay did.
    public struct Statistics: Sendable, Hashable {
        /// Entries the broker confirmed and that were marked published.
        public var published = 0
        /// Failed attempts recorded (nacks, returns, connection losses), of events and commands.
        public var failed = 0
        /// Entries (events or commands) parked after reaching the attempt limit.
        public var parked = 0
        /// Claimed entries handed back unsent because an earlier entry of their stream was not
        /// confirmed (or the relay stopped); they follow once it is published.
        public var heldBack = 0
        /// Published entries deleted by housekeeping.
        public var deleted = 0
        /// Commands (and deadlines) the broker confirmed and that were marked sent.
        public var commandsSent = 0

        public init() {}

        static func += (lhs: inout Statistics, rhs: Statistics) {
            lhs.published += rhs.published
            lhs.failed += rhs.failed
            lhs.parked += rhs.parked
            lhs.heldBack += rhs.heldBack
            lhs.deleted += rhs.deleted
            lhs.commandsSent += rhs.commandsSent
        }
    }
}

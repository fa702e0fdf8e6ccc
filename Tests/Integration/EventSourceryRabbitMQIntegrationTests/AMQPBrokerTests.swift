import TestSupport
import Testing

/// Every test that talks to the broker: serialized, because the recovery tests restart it.
@Suite(.serialized, .timeLimit(.minutes(1)), .requiresBroker)
struct AMQPBrokerTests {}

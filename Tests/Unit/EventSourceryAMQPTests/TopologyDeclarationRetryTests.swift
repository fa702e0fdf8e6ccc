import EventSourceryRabbitMQ
@testable import EventSourceryServices
import Testing

/// Which failures of a topology declaration at start-up are retried (with
/// `broker.wait_for_broker`) and which end the start with an error at once.
@Suite struct TopologyDeclarationRetryTests {
    @Test func aQueueWhoseNodeIsDownOrStartingIsRetried() {
        let homeNodeDown = AMQPError(
            .notFound, "the broker closed the channel while declaring queue \"order.dead\"", replyCode: 404,
            replyText: "NOT_FOUND - home node 'es3@localhost' of durable queue 'order.dead' in vhost '/' is down or inaccessible")
        let clusterNotFormed = AMQPError(
            .channelClosed, "the broker closed the channel while declaring queue \"order.inbox.2\"", replyCode: 541,
            replyText: "INTERNAL_ERROR - Cannot declare quorum queue 'order.inbox.2': cluster_not_formed")
        #expect(ServiceBootstrap.passes(homeNodeDown))
        #expect(ServiceBootstrap.passes(clusterNotFormed))
        #expect(ServiceBootstrap.passes(AMQPError(.connectionClosed, "the connection is recovering")))
        #expect(ServiceBootstrap.passes(AMQPError(.timeout, "no reply within 30 s")))
    }

    @Test func refusalsThatDoNotPassAreNotRetried() {
        #expect(!ServiceBootstrap.passes(AMQPError(.preconditionFailed, "inequivalent arg", replyCode: 406)))
        #expect(!ServiceBootstrap.passes(AMQPError(.accessRefused, "no configure permission", replyCode: 403)))
        #expect(!ServiceBootstrap.passes(AMQPError(.channelClosed, "unknown exchange type", replyCode: 503)))
        #expect(!ServiceBootstrap.passes(CancellationError()))
    }
}

import Foundation
public import Testing

/// Access to a RabbitMQ cluster for the failover tests: `AMQP_CLUSTER_URL`, the endpoint list
/// of the private 3-node cluster of `scripts/rabbitmq cluster-start` (print it with
/// `scripts/rabbitmq cluster-urls`). Without it the suites that carry
/// ``Testing/Trait/requiresCluster`` are skipped.
public enum TestCluster {
    public static let url: String? = {
        let url = ProcessInfo.processInfo.environment["AMQP_CLUSTER_URL"].flatMap { $0.isEmpty ? nil : $0 }
        if url == nil {
            let line =
                "note: skipping the cluster tests: AMQP_CLUSTER_URL is not set "
                + "(scripts/rabbitmq cluster-start; export AMQP_CLUSTER_URL=$(scripts/rabbitmq cluster-urls))\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
        return url
    }()

    /// Runs `scripts/rabbitmq` with `arguments` and returns its standard output.
    @discardableResult
    public static func script(_ arguments: String...) async throws -> String {
        try await TestBroker.run("/bin/bash", [TestRepository.root.appendingPathComponent("scripts/rabbitmq").path] + arguments)
    }
}

extension Trait where Self == ConditionTrait {
    /// The suite needs the cluster of `AMQP_CLUSTER_URL`; skipped when it is not set.
    public static var requiresCluster: Self {
        .enabled(if: TestCluster.url != nil, "needs a RabbitMQ cluster: set AMQP_CLUSTER_URL")
    }
}

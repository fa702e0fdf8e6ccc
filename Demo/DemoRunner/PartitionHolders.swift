import EventSourceryAMQP
import Foundation

/// Which consumer replica received the deliveries of which inbox partition: each replica's
/// counts of ``MetricName/consumerPartitionDeliveries`` per queue, read from its `/metrics`.
struct PartitionHolders: Sendable {
    /// Deliveries each replica received, by replica name and queue.
    var deliveries: [String: [String: Int]] = [:]

    /// Scrapes the consumers among `services` that serve metrics.
    static func scrape(_ services: [DemoCommand.Service]) async -> PartitionHolders {
        var holders = PartitionHolders()
        for service in services where service.product == "demo-service" {
            guard let port = service.httpPort, let page = await OrderClient.get("http://127.0.0.1:\(port)/metrics") else { continue }
            holders.deliveries[service.name] = counts(in: page)
        }
        return holders
    }

    /// The partition counts of a Prometheus text page: `queue` label → value.
    static func counts(in page: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        let prefix = MetricName.consumerPartitionDeliveries + "{"
        for line in page.split(separator: "\n") where line.hasPrefix(prefix) {
            guard let queue = line.firstMatch(of: /queue="([^"]+)"/)?.1, let value = line.split(separator: " ").last.flatMap({ Double($0) })
            else { continue }
            counts[String(queue)] = Int(value)
        }
        return counts
    }

    /// The replicas that received deliveries of `queue`.
    func holders(of queue: String) -> [String] {
        deliveries.filter { ($0.value[queue] ?? 0) > 0 }.keys.sorted()
    }

    /// One line per replica: the partitions it received deliveries from, with their counts.
    func lines(for replicas: [String]) -> [String] {
        replicas.map { replica in
            let held = (deliveries[replica] ?? [:]).filter { $0.value > 0 }.sorted { $0.key < $1.key }
            let text = held.isEmpty ? "none (waiting)" : held.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
            return "\(replica): \(text)"
        }
    }
}

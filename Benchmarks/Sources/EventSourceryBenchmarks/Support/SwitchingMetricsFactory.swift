import CoreMetrics
import Prometheus
import Synchronization

/// A metrics backend that can be switched between Prometheus and nothing within one process
/// (swift-metrics is bootstrapped once): handlers made while it is on record into a
/// Prometheus registry, those made while it is off are no-ops. The relay and the consumer
/// make their handlers when they are created, so each run gets the backend of its mode.
final class SwitchingMetricsFactory: MetricsFactory, Sendable {
    private let prometheus = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
    private let on = Atomic<Bool>(false)

    /// Switches the backend for the handlers made from now on.
    func set(_ enabled: Bool) { on.store(enabled, ordering: .relaxed) }

    private var isOn: Bool { on.load(ordering: .relaxed) }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        isOn ? prometheus.makeCounter(label: label, dimensions: dimensions) : NOOPMetricsHandler.instance
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        isOn ? prometheus.makeFloatingPointCounter(label: label, dimensions: dimensions) : NOOPMetricsHandler.instance
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        isOn ? prometheus.makeMeter(label: label, dimensions: dimensions) : NOOPMetricsHandler.instance
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        isOn ? prometheus.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate) : NOOPMetricsHandler.instance
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        isOn ? prometheus.makeTimer(label: label, dimensions: dimensions) : NOOPMetricsHandler.instance
    }

    // Handlers live as long as the benchmark process.
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}

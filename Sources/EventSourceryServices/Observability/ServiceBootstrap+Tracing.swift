import Foundation
public import ServiceLifecycle

#if OTLP
    import OTel
    public import Tracing
#endif

extension ServiceConfiguration {
    /// Whether this build has the OTLP exporter: built with the package trait `OTLP`.
    public static var hasOTLPExporter: Bool {
        #if OTLP
            true
        #else
            false
        #endif
    }

    /// The URL the OTLP/HTTP exporter sends spans to: `tracing.otlp_endpoint` (or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`) followed by `/v1/traces`; `nil` when none is set.
    ///
    /// - Throws: ``ConfigurationError`` for an endpoint that is not an `http` or `https` URL
    ///   with a host and no query, and for any endpoint in a build without the exporter
    ///   (``hasOTLPExporter``): a service that was asked to export must not silently drop its spans.
    public func otlpTracesEndpoint() throws(ConfigurationError) -> String? {
        guard let endpoint = tracing.otlpEndpoint else { return nil }
        guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty, url.query == nil, url.fragment == nil
        else {
            throw error(
                at: "tracing.otlp_endpoint",
                "must be the http:// or https:// base URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318; got '\(endpoint)'")
        }
        guard Self.hasOTLPExporter else {
            throw error(
                at: "tracing.otlp_endpoint",
                "this build has no OTLP exporter; build it with the package trait OTLP (swift build --traits OTLP) or remove the endpoint")
        }
        return endpoint.hasSuffix("/") ? endpoint + "v1/traces" : endpoint + "/v1/traces"
    }
}

extension ServiceBootstrap {
    /// Bootstraps the process's tracer when the configuration names an OTLP collector
    /// (``ServiceConfiguration/otlpTracesEndpoint()``): swift-otel's tracer, exporting batches
    /// of spans over OTLP/HTTP (protobuf) as `serviceName`. Returns the exporter's service, to
    /// run in the `ServiceGroup` before the workers so that it flushes their last spans after
    /// they stopped; nothing when no collector is configured (the library then starts no
    /// span). Call it once per process, before creating stores, relays and consumers (they take
    /// `InstrumentationSystem.tracer` when they are created). The standard `OTEL_*` variables
    /// (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_TRACES_SAMPLER`, …) refine it.
    ///
    /// - Throws: ``StartupError`` with exit code 78 for a bad endpoint or a build without the
    ///   exporter, or when swift-otel refuses its configuration.
    public static func bootstrapTracing(_ configuration: ServiceConfiguration, serviceName: String) throws(StartupError) -> [any Service] {
        let endpoint: String?
        do {
            endpoint = try configuration.otlpTracesEndpoint()
        } catch {
            throw StartupError("Bad configuration: \(error)", exitCode: 78)
        }
        guard let endpoint else { return [] }
        #if OTLP
            let (tracer, service) = try makeOTLPTracer(endpoint: endpoint, serviceName: serviceName)
            InstrumentationSystem.bootstrap(tracer)
            return [service]
        #else
            throw StartupError("Bad configuration: this build has no OTLP exporter for \(endpoint)", exitCode: 78)
        #endif
    }

    #if OTLP
        /// swift-otel's tracer exporting to `endpoint` (the full traces URL) over OTLP/HTTP
        /// (protobuf) as `serviceName`, and the service that runs its batching and export; not
        /// bootstrapped (see ``bootstrapTracing(_:serviceName:)``).
        ///
        /// - Throws: ``StartupError`` with exit code 78 when swift-otel refuses the configuration.
        public static func makeOTLPTracer(
            endpoint: String, serviceName: String
        ) throws(StartupError) -> (tracer: any Tracer, service: any Service) {
            var otel = OTel.Configuration.default
            otel.serviceName = serviceName
            otel.traces.otlpExporter.endpoint = endpoint
            otel.traces.otlpExporter.protocol = .httpProtobuf
            otel.metrics.enabled = false
            otel.logs.enabled = false
            do {
                let backend = try OTel.makeTracingBackend(configuration: otel)
                return (backend.factory, backend.service)
            } catch {
                throw StartupError("Bad configuration: the OTLP exporter for \(endpoint) cannot start: \(error)", exitCode: 78)
            }
        }
    #endif
}

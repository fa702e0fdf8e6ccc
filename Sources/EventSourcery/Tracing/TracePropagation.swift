public import Tracing

/// Moves a span's context into and out of the string fields an event carries
/// (``EventMetadata/traceContext``), through the tracer's own propagation: `traceparent` and
/// `tracestate` (W3C trace context) with an OpenTelemetry tracer, nothing with the no-op
/// tracer of an application that bootstrapped none.
public enum TracePropagation {
    /// The fields that carry `context` for `tracer`; empty with the no-op tracer.
    public static func fields(of context: ServiceContext, tracer: any Tracer) -> [String: String] {
        var fields: [String: String] = [:]
        tracer.inject(context, into: &fields, using: FieldsInjector())
        return fields
    }

    /// The context that `fields` carry for `tracer`, added to `base`.
    public static func context(
        from fields: [String: String], tracer: any Tracer, base: ServiceContext = .topLevel
    ) -> ServiceContext {
        var context = base
        guard !fields.isEmpty else { return context }
        tracer.extract(fields, into: &context, using: FieldsExtractor())
        return context
    }

    /// Whether `tracer` records anything: `false` for the no-op tracer, whose spans the
    /// library does not start at all, so that an application without tracing pays nothing.
    public static func isRecording(_ tracer: any Tracer) -> Bool {
        !(tracer is NoOpTracer)
    }
}

/// Writes propagation fields into a dictionary.
private struct FieldsInjector: Injector {
    func inject(_ value: String, forKey key: String, into fields: inout [String: String]) {
        fields[key] = value
    }
}

/// Reads propagation fields from a dictionary.
private struct FieldsExtractor: Extractor {
    func extract(key: String, from fields: [String: String]) -> String? {
        fields[key]
    }
}

public import Foundation

extension FlowTrace {
    /// The trace as pretty-printed JSON with sorted keys, for machines.
    ///
    /// Dates are ISO 8601 in UTC with milliseconds; delays are seconds
    /// (`sinceStartSeconds`, `sincePreviousSeconds`, `sinceCauseSeconds`); `causeIndex` is the
    /// index of the cause's step in `steps`, absent for roots. ``fromJSON(_:)`` reads it back.
    public func renderJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(DurationText.timestamp(date))
        }
        return try encoder.encode(self)
    }

    /// Reads a trace written by ``renderJSON()``.
    public static func fromJSON(_ data: Data) throws -> FlowTrace {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = DurationText.parseTimestamp(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not an ISO 8601 date")
            }
            return date
        }
        return try decoder.decode(FlowTrace.self, from: data)
    }
}

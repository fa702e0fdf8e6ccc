@testable import EventSourcery
import Foundation
import Testing

/// The stored form of a trace context: JSON with sorted keys that any JSON decoder reads back.
struct TraceContextJSONTests {
    @Test func writesSortedKeysAndReadsBackWithJSONDecoder() throws {
        let fields = [
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
        ]
        let text = TraceContextJSON.encode(fields)
        #expect(
            text
                == #"{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"}"#
        )
        #expect(try JSONDecoder().decode([String: String].self, from: Data(text.utf8)) == fields)
        #expect(TraceContextJSON.encode([:]) == "{}")
    }

    @Test func escapesWhatJSONRequires() throws {
        let fields = ["quote\"key": "back\\slash", "lines": "a\nb\tc\r\u{01}\u{1F}", "unicode": "é/✓"]
        let text = TraceContextJSON.encode(fields)
        #expect(text.contains(#""a\nb\tc\r\u0001\u001f""#))
        #expect(try JSONDecoder().decode([String: String].self, from: Data(text.utf8)) == fields)
    }
}

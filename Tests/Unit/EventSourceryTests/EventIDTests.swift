@testable import EventSourcery
import Foundation
import Testing

struct EventIDTests {
    @Test func carriesVersionSevenTheVariantAndTheMillisecond() {
        let date = Date(timeIntervalSince1970: 1_700_000_000.123)
        let id = UUID.timeOrdered(at: date)
        let text = id.uuidString.lowercased()
        // 1_700_000_000_123 ms = 0x018BCFE56800 + 0x7B
        #expect(text.hasPrefix("018bcfe5-687b-7"), "\(text)")
        let variant = text[text.index(text.startIndex, offsetBy: 19)]
        #expect("89ab".contains(variant), "variant 0b10: \(text)")
    }

    @Test func laterIdsSortAfterEarlierOnesAndNoneRepeat() {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        // Four per millisecond: the fraction of the millisecond orders them too.
        let ids = (0..<10_000).map { UUID.timeOrdered(at: start.addingTimeInterval(Double($0) / 4000)) }
        #expect(Set(ids).count == ids.count)
        let texts = ids.map { $0.uuidString }
        #expect(texts == texts.sorted(), "byte order is time order")
    }

    @Test func idsOfOneInstantDifferAcrossRefillsOfTheRandomPoolAndFromSeveralThreads() async {
        // The pool holds 512 words: 4 × 3,000 ids of the same millisecond and fraction cross
        // many refills, from four threads at once; only the random bits tell them apart.
        let instant = Date(timeIntervalSince1970: 1_800_000_000)
        let ids = await withTaskGroup(of: [UUID].self) { group in
            for _ in 0..<4 { group.addTask { (0..<3_000).map { _ in UUID.timeOrdered(at: instant) } } }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(Set(ids).count == 12_000)
        #expect(Set(ids.map { $0.uuidString.prefix(15) }).count == 1, "the same time and version")
        let randomBytes = ids.prefix(1_000).flatMap { id in withUnsafeBytes(of: id.uuid) { Array($0[9...]) } }
        #expect(Set(randomBytes).count > 200, "the random bytes take many values")
    }

    @Test func newEnvelopesGetTimeOrderedIDs() {
        let before = UUID.timeOrdered()
        let envelope = EventEnvelope(Probe())
        #expect(envelope.id.uuidString.dropFirst(14).hasPrefix("7"))
        #expect(envelope.id.uuidString.prefix(8) >= before.uuidString.prefix(8))
    }

    @Test func datesBefore1970EncodeAsZero() {
        #expect(UUID.timeOrdered(at: Date(timeIntervalSince1970: -5)).uuidString.hasPrefix("00000000-0000-7"))
    }

    @Test(arguments: [
        "018BCFE5-687B-7000-8123-456789ABCDEF", "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff",
    ])
    func parsesWhatFoundationParses(_ text: String) {
        #expect(UUID.parse(text) == UUID(uuidString: text))
        #expect(UUID.parse(text) != nil)
    }

    @Test(arguments: [
        "", "42", "018bcfe5-687b-7000-8123-456789abcde", "018bcfe5-687b-7000-8123-456789abcdeff", "018bcfe5x687b-7000-8123-456789abcdef",
        "018bcfe5-687b-7000-8123-456789abcdeg", "018bcfe5-687b-7000-8123-456789abcdé",
    ])
    func rejectsWhatIsNotAUUID(_ text: String) {
        #expect(UUID.parse(text) == nil)
        #expect(UUID(uuidString: text) == nil)
    }

    @Test func parsesItsOwnText() {
        for _ in 0..<100 {
            let id = UUID()
            #expect(UUID.parse(id.uuidString) == id)
            #expect(UUID.parse(id.uuidString.lowercased()) == id)
        }
    }

    @Test func theLowerCaseTextIsFoundationsInLowerCase() {
        let ids =
            [UUID(), UUID.timeOrdered(), UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))]
            + [UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255))]
        for id in ids + (0..<100).map({ _ in UUID() }) {
            #expect(id.lowercasedString == id.uuidString.lowercased())
            #expect(UUID.parse(id.lowercasedString) == id)
        }
    }

    private struct Probe: Event {}
}

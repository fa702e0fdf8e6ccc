import EventSourcery
import Testing

@Suite struct OutboxWakeTests {
    @Test func aSignalEndsTheWaitAndNamesItsSource() {
        #expect(OutboxWake.after(signalled: true, notified: false, logChanged: false, timeLeft: true) == .signalled)
        #expect(OutboxWake.after(signalled: true, notified: true, logChanged: false, timeLeft: true) == .notified)
        #expect(OutboxWake.after(signalled: true, notified: true, logChanged: true, timeLeft: false) == .notified)
    }

    @Test func withoutASignalTheFallbackPollEndsIt() {
        #expect(OutboxWake.after(signalled: false, notified: false, logChanged: true, timeLeft: true) == .polled)
        #expect(OutboxWake.after(signalled: false, notified: true, logChanged: true, timeLeft: false) == .polled)
    }

    @Test func nothingChangedKeepsWaitingUntilTheDeadline() {
        #expect(OutboxWake.after(signalled: false, notified: false, logChanged: false, timeLeft: true) == nil)
        #expect(OutboxWake.after(signalled: false, notified: false, logChanged: false, timeLeft: false) == .timedOut)
    }
}

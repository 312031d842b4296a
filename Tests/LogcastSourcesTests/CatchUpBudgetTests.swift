import Testing

@testable import LogcastSources

@Suite struct CatchUpBudgetTests {
    @Test func withinTheBudgetEverythingIsRead() {
        let budget = CatchUpBudget(rotated: 100..<200, current: 0..<50, budget: 150)
        #expect(budget.rotatedFrom == 100 && budget.currentFrom == 0)
        #expect(!budget.skips(rotated: 100..<200, current: 0..<50))
    }

    @Test func overTheBudgetTheRotatedRestGoesFirst() {
        let budget = CatchUpBudget(rotated: 100..<200, current: 0..<50, budget: 80)
        #expect(budget.rotatedFrom == 170, "30 bytes of the rotated rest, then all 50 of the new file")
        #expect(budget.currentFrom == 0)
        #expect(budget.skips(rotated: 100..<200, current: 0..<50))
    }

    @Test func aNewFileLargerThanTheBudgetSkipsTheRotatedRestEntirely() {
        let budget = CatchUpBudget(rotated: 100..<200, current: 0..<500, budget: 80)
        #expect(budget.rotatedFrom == nil)
        #expect(budget.currentFrom == 420)
    }

    @Test func oneFileKeepsItsNewestBytes() {
        #expect(CatchUpBudget(rotated: nil, current: 1000..<5000, budget: 1000).currentFrom == 4000)
        #expect(CatchUpBudget(rotated: nil, current: 1000..<1500, budget: 1000).currentFrom == 1000)
        #expect(CatchUpBudget(rotated: nil, current: 1000..<5000, budget: 0).currentFrom == 5000, "a budget of 0 reads nothing old")
        #expect(CatchUpBudget(rotated: nil, current: nil, budget: 10).currentFrom == nil)
    }

    @Test func aCutMovesToTheStartOfTheNextLine() {
        let bytes = Array("abc\ndef\nghi".utf8)  // lines begin at 0, 4 and 8
        #expect(CatchUpBudget.lineStart(after: 0, in: bytes, base: 0) == 0)
        #expect(CatchUpBudget.lineStart(after: 1, in: bytes, base: 0) == 4)
        #expect(CatchUpBudget.lineStart(after: 4, in: bytes, base: 0) == 4, "a cut on a line start stays")
        #expect(CatchUpBudget.lineStart(after: 5, in: bytes, base: 0) == 8)
        #expect(CatchUpBudget.lineStart(after: 9, in: bytes, base: 0) == nil, "no line begins after the last newline")
        // Reading from the byte before the cut, as the tailer does.
        #expect(CatchUpBudget.lineStart(after: 8, in: bytes[7...], base: 7) == 8)
        #expect(CatchUpBudget.lineStart(after: 6, in: bytes[5...], base: 5) == 8)
    }
}

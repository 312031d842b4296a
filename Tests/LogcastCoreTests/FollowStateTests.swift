import Testing
@testable import LogcastCore

@Suite struct FollowStateTests {
    private let fileA = FileIdentity(device: 1, inode: 100)
    private let fileB = FileIdentity(device: 1, inode: 200)

    private func status(_ identity: FileIdentity, size: Int64, links: Int = 1) -> FileStatus {
        FileStatus(identity: identity, size: size, linkCount: links)
    }

    @Test func followingAnOpenFileReadsIt() {
        var state = FollowState.following(fileA, at: 10)
        let steps = state.check(path: status(fileA, size: 20), open: status(fileA, size: 20))
        #expect(steps == [.read])
        #expect(state.phase == .following(fileA))
        #expect(state.offset == 10)
    }

    @Test func didReadAdvancesTheOffset() {
        var state = FollowState.following(fileA, at: 10)
        state.didRead(5)
        state.didRead(7)
        #expect(state.offset == 22)
    }

    @Test func truncationEmitsTruncatedRewindsAndReads() {
        var state = FollowState.following(fileA, at: 100)
        let steps = state.check(path: status(fileA, size: 40), open: status(fileA, size: 40))
        #expect(steps == [.emit(.truncated), .rewind, .read])
        #expect(state.offset == 0)
        #expect(state.phase == .following(fileA))
    }

    @Test func sameSizeIsNotTruncation() {
        var state = FollowState.following(fileA, at: 100)
        #expect(state.check(path: status(fileA, size: 100), open: status(fileA, size: 100)) == [.read])
        #expect(state.offset == 100)
    }

    @Test func renameRotationReadsOldFileThenOpensNewOne() {
        var state = FollowState.following(fileA, at: 50)
        let steps = state.check(path: status(fileB, size: 0), open: status(fileA, size: 80, links: 1))
        #expect(steps == [.read, .close, .emit(.rotated), .open, .read])
        #expect(state.phase == .following(fileB))
        #expect(state.offset == 0)
    }

    @Test func afterRotationTheNewFileIsFollowed() {
        var state = FollowState.following(fileA, at: 50)
        _ = state.check(path: status(fileB, size: 0), open: status(fileA, size: 80))
        state.didRead(12)
        #expect(state.check(path: status(fileB, size: 12), open: status(fileB, size: 12)) == [.read])
        #expect(state.offset == 12)
    }

    @Test func deletionThenRecreateLater() {
        var state = FollowState.following(fileA, at: 50)
        // Deleted: the path is gone and the open file has no links left.
        let first = state.check(path: nil, open: status(fileA, size: 60, links: 0))
        #expect(first == [.read, .close, .emit(.missing)])
        #expect(state.phase == .waiting(announced: true))

        // Still gone: nothing more to say.
        #expect(state.check(path: nil, open: nil) == [])
        #expect(state.check(path: nil, open: nil) == [])

        // It comes back.
        let second = state.check(path: status(fileB, size: 5), open: nil)
        #expect(second == [.open, .emit(.created), .read])
        #expect(state.phase == .following(fileB))
        #expect(state.offset == 0)
    }

    @Test func deleteAndRecreateBetweenChecks() {
        var state = FollowState.following(fileA, at: 50)
        let steps = state.check(path: status(fileB, size: 3), open: status(fileA, size: 50, links: 0))
        #expect(steps == [.read, .close, .emit(.missing), .open, .emit(.created), .read])
        #expect(state.phase == .following(fileB))
        #expect(state.offset == 0)
    }

    @Test func renamedAwayWithoutReplacementKeepsReadingTheOldFile() {
        var state = FollowState.following(fileA, at: 50)
        let steps = state.check(path: nil, open: status(fileA, size: 70, links: 1))
        #expect(steps == [.read])
        #expect(state.phase == .following(fileA))
        #expect(state.offset == 50)
        // When the replacement appears, it is a rotation.
        state.didRead(20)
        #expect(state.check(path: status(fileB, size: 0), open: status(fileA, size: 70)) == [.read, .close, .emit(.rotated), .open, .read])
    }

    @Test func truncationAndRotationInOneCheck() {
        var state = FollowState.following(fileA, at: 50)
        let steps = state.check(path: status(fileB, size: 0), open: status(fileA, size: 10))
        #expect(steps == [.emit(.truncated), .rewind, .read, .close, .emit(.rotated), .open, .read])
    }

    @Test func waitingUnannouncedEmitsMissingOnce() {
        var state = FollowState.waiting(announced: false)
        #expect(state.check(path: nil, open: nil) == [.emit(.missing)])
        #expect(state.phase == .waiting(announced: true))
        #expect(state.check(path: nil, open: nil) == [])
        #expect(state.check(path: nil, open: nil) == [])
    }

    @Test func waitingUnannouncedWithFilePresentOpensWithoutCreated() {
        var state = FollowState.waiting(announced: false)
        #expect(state.check(path: status(fileA, size: 9), open: nil) == [.open, .read])
        #expect(state.phase == .following(fileA))
        #expect(state.offset == 0)
    }

    @Test func waitingAnnouncedEmitsCreatedWhenTheFileAppears() {
        var state = FollowState.waiting(announced: true)
        #expect(state.check(path: nil, open: nil) == [])
        #expect(state.check(path: status(fileA, size: 9), open: nil) == [.open, .emit(.created), .read])
    }

    @Test func missingThenAppearingFromUnannouncedStart() {
        var state = FollowState.waiting(announced: false)
        _ = state.check(path: nil, open: nil)
        #expect(state.check(path: status(fileA, size: 1), open: nil) == [.open, .emit(.created), .read])
    }

    @Test func openFailedWaitsAndRetries() {
        var state = FollowState.waiting(announced: true)
        _ = state.check(path: status(fileA, size: 9), open: nil)
        state.didRead(4)
        state.openFailed()
        #expect(state.phase == .waiting(announced: true))
        #expect(state.offset == 0)
        // No second `missing`; the retry opens again.
        #expect(state.check(path: nil, open: nil) == [])
        #expect(state.check(path: status(fileA, size: 9), open: nil) == [.open, .emit(.created), .read])
    }

    @Test func followingWithoutAnOpenDescriptorStartsOver() {
        var state = FollowState.following(fileA, at: 30)
        #expect(state.check(path: status(fileA, size: 30), open: nil) == [.close])
        #expect(state.phase == .waiting(announced: false))
    }
}

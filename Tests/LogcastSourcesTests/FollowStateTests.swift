import LogcastHub
import LogcastProtocol
import Testing

@testable import LogcastSources

@Suite struct FollowStateTests {
    private let fileA = FileIdentity(device: 1, inode: 100)
    private let fileB = FileIdentity(device: 1, inode: 200)

    private func status(_ identity: FileIdentity, size: Int64, links: Int = 1) -> FileStatus {
        FileStatus(identity: identity, size: size, linkCount: links)
    }

    /// Carries out `steps` in order as the I/O layer does: `.open` calls `didOpen()`,
    /// `.rewind` calls `didRewind()`, and each `.read` reads the next count of `reads`
    /// (0 once they run out) and reports it with `didRead`.
    private func perform(
        _ steps: [FollowState.Step],
        on state: inout FollowState,
        reads: [Int] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        var pending = reads[...]
        for step in steps {
            switch step {
            case .read: state.didRead(pending.popFirst() ?? 0)
            case .open:
                if case .following(let identity) = state.phase { state.didOpen(identity) }
            case .rewind: state.didRewind()
            case .emit, .close: break
            }
        }
        #expect(pending.isEmpty, "more reads given than .read steps", sourceLocation: sourceLocation)
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

    @Test func didOpenAndDidRewindResetTheOffset() {
        var state = FollowState.following(fileA, at: 10)
        state.didOpen(fileA)
        #expect(state.offset == 0)
        state.didRead(9)
        state.didRewind()
        #expect(state.offset == 0)
        #expect(state.phase == .following(fileA))
    }

    /// Rotated twice between the stat and the open: the state follows the
    /// file actually opened, so the next check sees no rotation (no reread).
    @Test func theOpenedFileIsFollowedNotTheOneStatted() {
        let fileC = FileIdentity(device: 1, inode: 300)
        var state = FollowState.following(fileA, at: 5)
        let steps = state.check(path: status(fileB, size: 2), open: status(fileA, size: 5))
        #expect(steps == [.read, .close, .emit(.rotated), .open, .read])
        #expect(state.phase == .following(fileB))
        state.didOpen(fileC)
        state.didRead(6)
        #expect(state.phase == .following(fileC))
        #expect(state.check(path: status(fileC, size: 6), open: status(fileC, size: 6)) == [.read])
    }

    @Test func truncationEmitsTruncatedRewindsAndReads() {
        var state = FollowState.following(fileA, at: 100)
        let steps = state.check(path: status(fileA, size: 40), open: status(fileA, size: 40))
        #expect(steps == [.emit(.truncated), .rewind, .read])
        #expect(state.phase == .following(fileA))
        // `check` leaves the offset alone; the rewind resets it.
        #expect(state.offset == 100)
        perform(steps, on: &state, reads: [40])
        #expect(state.offset == 40)
        #expect(state.check(path: status(fileA, size: 40), open: status(fileA, size: 40)) == [.read])
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
        // The old file is drained first, so `check` must not reset the offset yet.
        #expect(state.offset == 50)
        perform(steps, on: &state, reads: [30, 0])
        #expect(state.offset == 0)
    }

    @Test func afterRotationTheNewFileIsFollowed() {
        var state = FollowState.following(fileA, at: 50)
        let steps = state.check(path: status(fileB, size: 0), open: status(fileA, size: 80))
        perform(steps, on: &state, reads: [30, 0])
        // The new file grows.
        let next = state.check(path: status(fileB, size: 12), open: status(fileB, size: 12))
        #expect(next == [.read])
        perform(next, on: &state, reads: [12])
        #expect(state.offset == 12)
    }

    /// Regression: `check` used to reset the offset on rotation, before the old
    /// file's remaining bytes were read, so those bytes were counted against the
    /// new file and the next check saw a spurious truncation.
    @Test func oldFileDrainBeforeOpenDoesNotCountAgainstTheNewFile() {
        let newSize = 12
        var state = FollowState.following(fileA, at: 50)
        let steps = state.check(
            path: status(fileB, size: Int64(newSize)),
            open: status(fileA, size: 80, links: 1)
        )
        #expect(steps == [.read, .close, .emit(.rotated), .open, .read])
        // The I/O layer, in step order: drain the old file's 30 bytes, open, read the new file.
        state.didRead(30)
        #expect(state.offset == 80)
        state.didOpen(fileB)
        #expect(state.offset == 0)
        state.didRead(newSize)
        #expect(state.offset == Int64(newSize))

        let next = state.check(
            path: status(fileB, size: Int64(newSize)),
            open: status(fileB, size: Int64(newSize))
        )
        #expect(next == [.read])
        #expect(!next.contains(.emit(.truncated)))
        #expect(state.offset == Int64(newSize))
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
        perform(second, on: &state, reads: [5])
        #expect(state.offset == 5)
        #expect(state.check(path: status(fileB, size: 5), open: status(fileB, size: 5)) == [.read])
    }

    @Test func deleteAndRecreateBetweenChecks() {
        var state = FollowState.following(fileA, at: 50)
        let steps = state.check(path: status(fileB, size: 3), open: status(fileA, size: 60, links: 0))
        #expect(steps == [.read, .close, .emit(.missing), .open, .emit(.created), .read])
        #expect(state.phase == .following(fileB))
        #expect(state.offset == 50)
        // Drain the deleted file's last 10 bytes, open the new one, read its 3.
        perform(steps, on: &state, reads: [10, 3])
        #expect(state.offset == 3)
        #expect(state.check(path: status(fileB, size: 3), open: status(fileB, size: 3)) == [.read])
    }

    @Test func renamedAwayWithoutReplacementKeepsReadingTheOldFile() {
        var state = FollowState.following(fileA, at: 50)
        let steps = state.check(path: nil, open: status(fileA, size: 70, links: 1))
        #expect(steps == [.read])
        #expect(state.phase == .following(fileA))
        #expect(state.offset == 50)
        perform(steps, on: &state, reads: [20])
        #expect(state.offset == 70)
        // When the replacement appears, it is a rotation.
        let rotation = state.check(path: status(fileB, size: 0), open: status(fileA, size: 70))
        #expect(rotation == [.read, .close, .emit(.rotated), .open, .read])
        #expect(state.phase == .following(fileB))
        perform(rotation, on: &state, reads: [0, 0])
        #expect(state.offset == 0)
    }

    @Test func truncationAndRotationInOneCheck() {
        var state = FollowState.following(fileA, at: 50)
        let steps = state.check(path: status(fileB, size: 4), open: status(fileA, size: 10))
        #expect(steps == [.emit(.truncated), .rewind, .read, .close, .emit(.rotated), .open, .read])
        #expect(state.phase == .following(fileB))
        // Rewind, read the truncated old file's 10 bytes, open, read the new file's 4.
        perform(steps, on: &state, reads: [10, 4])
        #expect(state.offset == 4)
        #expect(state.check(path: status(fileB, size: 4), open: status(fileB, size: 4)) == [.read])
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
        let steps = state.check(path: status(fileA, size: 9), open: nil)
        #expect(steps == [.open, .read])
        #expect(state.phase == .following(fileA))
        #expect(state.offset == 0)
        perform(steps, on: &state, reads: [9])
        #expect(state.offset == 9)
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

import Testing

@testable import LogcastStore

/// The segment log's checksum: the IEEE CRC-32 zlib computes, whatever the
/// length and alignment of the bytes.
@Suite struct CRC32Tests {
    @Test func knownValues() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
        #expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339)
        #expect(CRC32.checksum([UInt8](repeating: 0, count: 32)) == 0x190A_55AD)
    }

    @Test func theEightByteStepsAgreeWithTheByteLoopAtEveryLengthAndOffset() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<600).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for offset in 0..<9 {
            for length in 0..<(bytes.count - offset) where length < 80 || length % 37 == 0 {
                let slice = Array(bytes[offset..<(offset + length)])
                let unaligned = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + length)])) }
                #expect(unaligned == CRC32.bytewise(slice), "offset \(offset), length \(length)")
                #expect(CRC32.checksum(slice) == CRC32.bytewise(slice))
            }
        }
    }
}

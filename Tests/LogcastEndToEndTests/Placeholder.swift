import Testing
import WSClient
@Test func placeholder() { #expect(true) }

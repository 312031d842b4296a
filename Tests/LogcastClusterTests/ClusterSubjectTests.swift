import Testing

@testable import LogcastCluster

@Suite struct ClusterSubjectTests {
    static let names = ["web1", "nginx", "", "_", "a.b", "*", ">", "a b", "ünï", "x_2E", "app-1", "tab\there", "$SYS"]

    @Test(arguments: names)
    func everyNameIsOneTokenAndComesBack(_ name: String) {
        let token = ClusterSubject.token(name)
        #expect(!token.isEmpty)
        let special = token.contains { ".*> \t\r\n".contains($0) }
        #expect(!special, "no separator, wildcard or whitespace")
        let ascii = token.unicodeScalars.allSatisfy { $0.isASCII }
        #expect(ascii)
        #expect(ClusterSubject.name(ofToken: Substring(token)) == name)
    }

    @Test func namesThatLookAlikeStayApart() {
        let tokens = Self.names.map(ClusterSubject.token)
        #expect(Set(tokens).count == tokens.count)
        #expect(ClusterSubject.token("a.b") == "a_2Eb")
        #expect(ClusterSubject.token("_") == "_5F")
        #expect(ClusterSubject.token("web-1") == "web-1")
    }

    @Test func subjectsParseBackAndOthersAreRefused() {
        let subject = ClusterSubject.subject(host: "db.example", source: "pg log")
        #expect(subject == "logcast.db_2Eexample.pg_20log")
        #expect(ClusterSubject.parse(subject)! == ("db.example", "pg log"))
        for other in ["logcast.a", "logcast.a.b.c", "other.a.b", "logcast.a._Z1", "logcast.a._4", "logcast..b", "logcast.a._FF"] {
            #expect(ClusterSubject.parse(other) == nil, "\(other)")
        }
    }

    @Test func filtersSelectOneHostOneSourceBothOrAll() {
        #expect(ClusterSubject.filter(host: "web1", source: nil) == "logcast.web1.*")
        #expect(ClusterSubject.filter(host: nil, source: "nginx") == "logcast.*.nginx")
        #expect(ClusterSubject.filter(host: "a.b", source: "c") == "logcast.a_2Eb.c")
        #expect(ClusterSubject.filter(host: nil, source: nil) == "logcast.*.*")
    }
}

import Foundation
import LogcastSources

/// A configured source before it starts: its name and what it reads.
public struct SourceSpec: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A path or a glob (`--file`).
        case file(String)
        /// The `demo` source; its file is made in a new private directory at start.
        case demo
        case journal(JournalTailer.Location)
    }

    public var name: String
    public var kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// What `/api/v1/sources` and the log show as the source's pattern.
    public var pattern: String {
        switch kind {
        case .file(let pattern): pattern
        case .demo: "(a new temporary directory)/demo.log"
        case .journal(let location): location.description
        }
    }

    public var kindName: String {
        switch kind {
        case .file: "file"
        case .demo: "demo"
        case .journal: "journal"
        }
    }

    public var isJournal: Bool {
        if case .journal = kind { return true }
        return false
    }

    /// The sources the settings name, in the order `--file`, `--demo`,
    /// `--journal`, `--journal-directory`, `--journal-file` (journal files
    /// with one NAME form one source).
    /// - Throws: a malformed item, or two sources with one name.
    static func parse(_ settings: ResolvedSettings) throws(ConfigurationError) -> [SourceSpec] {
        var specs: [SourceSpec] = []
        let fileLabel = settings.origin(.file)
        for text in settings.list(.file) {
            specs.append(try parseFile(text, label: fileLabel))
        }
        if settings.flag(.demo) { specs.append(SourceSpec(name: "demo", kind: .demo)) }
        if settings.flag(.journal) { specs.append(SourceSpec(name: "journal", kind: .journal(.local))) }
        let directoryLabel = settings.origin(.journalDirectory)
        for text in settings.list(.journalDirectory) {
            let (name, path) = try parseNamed(text, label: directoryLabel, defaultName: "journal")
            specs.append(SourceSpec(name: name, kind: .journal(.directory(path))))
        }
        var fileGroups: [(name: String, paths: [String])] = []
        let journalFileLabel = settings.origin(.journalFile)
        for text in settings.list(.journalFile) {
            let (name, path) = try parseNamed(text, label: journalFileLabel, defaultName: "journal")
            if let index = fileGroups.firstIndex(where: { $0.name == name }) {
                fileGroups[index].paths.append(path)
            } else {
                fileGroups.append((name, [path]))
            }
        }
        specs += fileGroups.map { SourceSpec(name: $0.name, kind: .journal(.files($0.paths))) }
        var seen: [String: String] = [:]
        for spec in specs {
            if let other = seen[spec.name] {
                throw ConfigurationError("two sources are named '\(spec.name)': \(other) and \(spec.pattern); name them apart with NAME=PATH")
            }
            seen[spec.name] = spec.pattern
        }
        return specs
    }

    /// With no source given: the system journal when readable, else the
    /// classic syslog file.
    static func defaultSources() -> [SourceSpec] {
        if JournalTailer.localJournalProblem() == nil {
            return [SourceSpec(name: "journal", kind: .journal(.local))]
        }
        for candidate in ["/var/log/syslog", "/var/log/messages"] where FileManager.default.isReadableFile(atPath: candidate) {
            return [SourceSpec(name: (candidate as NSString).lastPathComponent, kind: .file(candidate))]
        }
        return []
    }

    /// `[NAME=]PATH` for `--file`. NAME defaults to the file's base name (for a glob, its directory's).
    static func parseFile(_ text: String, label: String) throws(ConfigurationError) -> SourceSpec {
        let (explicitName, path) = splitName(text)
        guard !path.isEmpty else { throw ConfigurationError("\(label) '\(text)' has no path; use --file [NAME=]PATH") }
        if let problem = FileTailer.validate(pattern: path) { throw ConfigurationError("\(label) \(problem)") }
        let nsPath = path as NSString
        let isGlob = nsPath.lastPathComponent.contains(where: { "*?[".contains($0) })
        let name = explicitName ?? (isGlob ? (nsPath.deletingLastPathComponent as NSString).lastPathComponent : nsPath.lastPathComponent)
        try validateName(name, text: text, label: label)
        return SourceSpec(name: name, kind: .file(path))
    }

    /// `[NAME=]PATH` for the journal settings; NAME defaults to `defaultName`.
    static func parseNamed(_ text: String, label: String, defaultName: String) throws(ConfigurationError) -> (String, String) {
        let (explicitName, path) = splitName(text)
        guard !path.isEmpty else { throw ConfigurationError("\(label) '\(text)' has no path; use \(label) [NAME=]PATH") }
        let name = explicitName ?? defaultName
        try validateName(name, text: text, label: label)
        return (name, path)
    }

    /// `NAME=PATH` → (NAME, PATH); a `=` after a `/` belongs to the path.
    static func splitName(_ text: String) -> (String?, String) {
        if let equals = text.firstIndex(of: "="), !text[..<equals].contains("/") {
            return (String(text[..<equals]), String(text[text.index(after: equals)...]))
        }
        return (nil, text)
    }

    static func validateName(_ name: String, text: String, label: String) throws(ConfigurationError) {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "._-@"))
        guard !name.isEmpty, name.unicodeScalars.allSatisfy({ allowed.contains($0) }) else {
            throw ConfigurationError("\(label) '\(text)': source name '\(name)' may hold only letters, digits and . _ - @; name it with NAME=PATH")
        }
    }
}

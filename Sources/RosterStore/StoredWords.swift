import Postgres
import Vocabulary

// The shared vocabulary as bind parameters and as columns read back.

extension MemberStatus: PGBindable { public var pgBindValue: PGBindValue { .text(rawValue) } }
extension Role: PGBindable { public var pgBindValue: PGBindValue { .text(rawValue) } }
extension RoleSource: PGBindable { public var pgBindValue: PGBindValue { .text(rawValue) } }
extension JoinedBy: PGBindable { public var pgBindValue: PGBindValue { .text(rawValue) } }
extension DeprovisionMode: PGBindable { public var pgBindValue: PGBindValue { .text(rawValue) } }
extension ContentPolicy: PGBindable { public var pgBindValue: PGBindValue { .text(rawValue) } }
extension JobKind: PGBindable { public var pgBindValue: PGBindValue { .text(rawValue) } }
extension JobStatus: PGBindable { public var pgBindValue: PGBindValue { .text(rawValue) } }
extension MailTemplate: PGBindable { public var pgBindValue: PGBindValue { .text(rawValue) } }
extension NotificationStatus: PGBindable { public var pgBindValue: PGBindValue { .text(rawValue) } }

extension PGRow {
  /// A column holding one of the shared words; anything else is a decoding error.
  public func word<W: RawRepresentable>(_ name: String, as: W.Type = W.self) throws(PGError) -> W where W.RawValue == String {
    let text = try string(name)
    guard let w = W(rawValue: text) else { throw PGError(kind: .decoding, message: "column \(name) holds '\(text)', not a \(W.self)") }
    return w
  }
}

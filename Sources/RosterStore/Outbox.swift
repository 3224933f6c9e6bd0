import Foundation
import JSON
import Postgres
import Vocabulary

/// The email outbox (N1): a row written in the same transaction as its cause;
/// the notifications process delivers it.
public enum Outbox {
  public static let channel = "roster_outbox"

  @discardableResult
  public static func enqueue(
    _ tx: PGTransaction, template: MailTemplate, to: String, data: JSONValue, workspaceId: String?, mailDomain: String
  ) throws -> String {
    let id = UUID().uuidString.lowercased()
    // Stable for the row's whole life: a retry is the same logical message (N2).
    let messageId = "<\(id)@\(mailDomain)>"
    try tx.query(
      """
      INSERT INTO notifications (id, template, to_address, data, workspace_id, message_id)
      VALUES (\(id)::uuid, \(template), \(to), \(data)::jsonb, \(workspaceId)::uuid, \(messageId))
      """)
    tx.notifyAfterCommit("roster_outbox")  // after commit, coalesced (PGNotifySender)
    return id
  }
}

import Postgres
import RosterStore
import SCIM

// How errors from the store and the database read as SCIM errors; the
// router catches `SCIMErrorConvertible` once instead of a case per type.

extension TargetProtectedError: SCIMErrorConvertible {
  public var scimError: SCIMError { SCIMError(409, nil, message) }
}

extension LastAdminError: SCIMErrorConvertible {
  public var scimError: SCIMError { SCIMError(409, nil, "This is the workspace's last active admin; make someone else an admin first.") }
}

extension PGError: SCIMErrorConvertible {
  /// A database error the client can act on, else a 500 (the log has it).
  public var scimError: SCIMError {
    if isConnectionFailure { return SCIMError(503, nil, "The database is unavailable; try again shortly.") }
    if isUniqueViolation { return .uniqueness("A resource with that unique attribute already exists.") }
    if isBadText { return .invalidValue("A value contains a character the database cannot store (NUL).") }
    if kind == .noRow { return SCIMError(409, nil, "The resource was changed by another request at the same moment; read it again and retry.") }
    if isDataException { return .invalidValue("A value could not be compared or stored as its type (a date or number out of range?).") }
    return SCIMError(500, nil, "Internal error; the server log has details.")
  }
}

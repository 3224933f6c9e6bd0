import Foundation
import JSON
import JSONRPC
import Sockets

/// A JSON-RPC client for tests: one connection, one request at a time.
public final class TestRPC {
  public let client: LineClient
  var nextID: Int64 = 0

  public init(_ socketPath: String) throws {
    client = try LineClient(unixPath: socketPath, timeoutSeconds: 60)
  }

  /// Sends raw bytes and returns the next reply line (nil at end of input).
  public func raw(_ bytes: [UInt8], expectReply: Bool = true) throws -> JSONValue? {
    try client.send(bytes)
    guard expectReply, let line = try client.readLine() else { return nil }
    return try JSONParser.parse(line, maxDepth: 512)
  }

  public func raw(_ text: String, expectReply: Bool = true) throws -> JSONValue? {
    try raw(Array(text.utf8), expectReply: expectReply)
  }

  /// The whole response object.
  public func request(_ method: String, _ params: JSONValue = [:]) throws -> JSONValue {
    nextID += 1
    let req: JSONValue = ["jsonrpc": "2.0", "id": .int(nextID), "method": .string(method), "params": params]
    guard let reply = try raw(JSONWriter.bytes(req) + [0x0A]) else { throw TestError("no reply to \(method)") }
    return reply
  }

  /// The result, or the error thrown as `RPCError`.
  @discardableResult
  public func call(_ method: String, _ params: JSONValue = [:]) throws -> JSONValue {
    let reply = try request(method, params)
    if let e = reply["error"] {
      throw RPCError(code: Int(e["code"]?.intValue ?? 0), message: e["message"]?.stringValue ?? "", data: e["data"])
    }
    return reply["result"] ?? .null
  }

  /// The error a call fails with (nil if it succeeded).
  public func error(_ method: String, _ params: JSONValue = [:]) throws -> RPCError? {
    do {
      _ = try call(method, params)
      return nil
    } catch let e as RPCError {
      return e
    }
  }
}

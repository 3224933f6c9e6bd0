import JSON
import Synchronization

/// What the dispatcher reports about each call (for logs and metrics).
public struct CallRecord: Sendable {
  /// The method name as sent (at most 100 characters).
  public var method: String
  /// Whether `method` is registered. Metrics label only registered names, so
  /// a client sending random names cannot grow the set of series.
  public var known: Bool
  public var requestID: String
  public var seconds: Double
  /// nil on success.
  public var error: RPCError?
  /// The underlying error when a handler threw something that was not an RPC
  /// error, as its `description` (errors that may hold data, such as
  /// database errors, keep it out of their description).
  public var internalDetail: String?
  /// The same error's `debugDescription`, for debug-level logs only.
  public var internalDebugDetail: String?
}

/// Routes JSON-RPC 2.0 messages to registered methods. Pure: it turns one
/// received text into the text to send back (or nothing), with no I/O.
public final class Dispatcher: Sendable {
  public static let maxBatch = 100

  public let title: String
  public let version: String
  private let methods = MethodTable()
  private let nextRequestID = Atomic<UInt64>(0)
  private let observer: (@Sendable (CallRecord) -> Void)?
  /// Maps errors a handler throws to RPC errors (database errors, domain errors…).
  private let errorMapper: (@Sendable (any Error) -> RPCError?)?
  /// Where a method this dispatcher does not have is served (another
  /// process's socket), for a method_not_found that helps.
  private let locator = Mutex<(@Sendable (String) -> String?)?>(nil)

  public func setMethodLocator(_ f: @escaping @Sendable (String) -> String?) { locator.withLock { $0 = f } }

  /// The application errors each method may answer with (for rpc.discover
  /// and docs/api.md), beyond the parameter errors every method has.
  private let errorDocs = Mutex<[String: [ErrorDoc]]>([:])

  public func document(errors: [String: [ErrorDoc]]) { errorDocs.withLock { $0.merge(errors) { _, new in new } } }

  /// Methods registered without an entry in the error table (a test keeps this empty).
  public var methodsWithoutErrorDocs: [String] {
    let documented = errorDocs.withLock { Set($0.keys) }
    return methodNames.filter { !documented.contains($0) && !$0.hasPrefix("rpc.") && !$0.hasPrefix("system.") }
  }

  public init(
    title: String, version: String, observer: (@Sendable (CallRecord) -> Void)? = nil,
    errorMapper: (@Sendable (any Error) -> RPCError?)? = nil
  ) {
    self.title = title
    self.version = version
    self.observer = observer
    self.errorMapper = errorMapper
    register(
      MethodSpec("rpc.discover", summary: "This service's OpenRPC 1.x document, generated from its registered methods.") {
        [unowned self] _, _ in self.openRPCDocument()
      })
  }

  public func register(_ spec: MethodSpec) { methods.add([spec]) }

  public func register(_ specs: [MethodSpec]) { methods.add(specs) }

  public var methodNames: [String] { Array(methods.current.keys).sorted() }

  func spec(_ name: String) -> MethodSpec? { methods.current[name] }

  // MARK: Messages

  /// Handles one line received from a client. Returns the line to send back,
  /// or nil when nothing must be sent (notifications, all-notification batches).
  public func handle(line: UnsafeBufferPointer<UInt8>, context: CallContext) -> [UInt8]? {
    let message: JSONValue
    do {
      message = try JSONParser.parse(bytes: line)
    } catch {
      let detail: String
      switch error.kind {
      case .tooDeep: detail = "JSON nested deeper than \(JSONParser.defaultMaxDepth) levels"
      case .invalidUTF8: detail = "the text is not valid UTF-8"
      case .syntax: detail = "invalid JSON (\(error.message) at byte \(error.offset))"
      }
      return JSONWriter.bytes(Self.errorResponse(id: .null, .parseError(detail)))
    }
    return handle(message: message, context: context).map(JSONWriter.bytes)
  }

  public func handle(line: [UInt8], context: CallContext) -> [UInt8]? {
    line.withUnsafeBufferPointer { handle(line: $0, context: context) }
  }

  /// Calls one method in-process (the guided setup's pages use the same
  /// methods, validation and audit as the socket).
  public func call(_ method: String, _ params: [String: JSONValue], context: CallContext) -> Result<JSONValue, RPCError> {
    let reply = handle(message: ["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": .object(params)], context: context)
    if let e = reply?["error"] {
      return .failure(RPCError(code: Int(e["code"]?.intValue ?? Int64(RPCError.Code.internalError)), message: e["message"]?.stringValue ?? "", data: e["data"]))
    }
    return .success(reply?["result"] ?? .null)
  }

  /// Handles one parsed message (single request or batch).
  public func handle(message: JSONValue, context: CallContext) -> JSONValue? {
    switch message {
    case .array(let entries):
      if entries.isEmpty { return Self.errorResponse(id: .null, .invalidRequest("empty batch")) }
      if entries.count > Self.maxBatch {
        return Self.errorResponse(
          id: .null,
          .invalidRequest("batch of \(entries.count) entries; at most \(Self.maxBatch) are allowed", reason: "batch_too_large"))
      }
      let replies = entries.compactMap { handleSingle($0, context: context) }
      return replies.isEmpty ? nil : .array(replies)
    default:
      return handleSingle(message, context: context)
    }
  }

  private func handleSingle(_ message: JSONValue, context: CallContext) -> JSONValue? {
    guard case .object(let obj) = message else {
      return Self.errorResponse(id: .null, .invalidRequest("expected a request object, got \(message.typeName)"))
    }
    // Recover the id first so that even an invalid request can be answered with it.
    let idValue = obj["id"]
    var replyID: JSONValue = .null
    if let idValue {
      switch idValue {
      case .string, .int, .null: replyID = idValue
      case .double(let d) where d.rounded() == d: replyID = idValue
      default:
        return Self.errorResponse(id: .null, .invalidRequest("'id' must be a string, an integer or null"))
      }
    }
    guard obj["jsonrpc"] == .string("2.0") else {
      return Self.errorResponse(id: replyID, .invalidRequest("'jsonrpc' must be exactly \"2.0\""))
    }
    guard let method = obj["method"]?.stringValue else {
      return Self.errorResponse(id: replyID, .invalidRequest("'method' must be a string"))
    }
    let isNotification = idValue == nil
    var params: [String: JSONValue] = [:]
    let spec = spec(method)
    switch obj["params"] {
    case nil: break
    case .object(let o)?: params = o
    case .array(let a)? where spec?.acceptsPositional == true && a.count <= spec!.params.count:
      for (value, p) in zip(a, spec!.params) { params[p.name] = value }
    case .array?:
      if spec == nil { break }  // reported as method not found below
      // Not a ternary: `cond ? nil : reply` would make nil the JSON null
      // (JSONValue is nil-literal expressible) and answer a notification
      // with a bare `null` line. Found by the JSON-RPC fuzzer.
      if isNotification { return nil }
      return Self.errorResponse(
        id: replyID, .invalidParams("Parameters must be named (a JSON object), not positional.", reason: "named_params_only"))
    default:
      return Self.errorResponse(id: replyID, .invalidRequest("'params' must be an object or an array"))
    }

    let n = nextRequestID.add(1, ordering: .relaxed).newValue
    var ctx = context
    ctx.requestID = "r\(n)"
    let started = ContinuousClock.now
    var internalDetail: String?
    var internalDebugDetail: String?
    let outcome: Result<JSONValue, RPCError>
    if let spec {
      do {
        try ParamValidator.refuseNUL(.object(params), name: "")
        try ParamValidator.validate(params, against: spec.params)
        outcome = .success(try spec.handler(Params(params), ctx))
      } catch let e as RPCError {
        outcome = .failure(e)
      } catch let e as any RPCErrorConvertible {
        outcome = .failure(e.rpcError)
      } catch {
        if let mapped = errorMapper?(error) {
          outcome = .failure(mapped)
        } else {
          internalDetail = String(describing: error)
          internalDebugDetail = String(reflecting: error)
          outcome = .failure(.internalError())
        }
      }
    } else {
      if let home = locator.withLock({ $0 })?(method) {
        outcome = .failure(
          RPCError(
            code: RPCError.Code.methodNotFound, reason: "method_not_found",
            message: "Method not found here: '\(method.prefix(100))' is served by \(home), not by this socket.", extra: ["servedBy": .string(home)]))
      } else {
        outcome = .failure(.methodNotFound(method))
      }
    }
    let elapsed = ContinuousClock.now - started
    if let observer {
      let seconds = elapsed.inSeconds
      var err: RPCError?
      if case .failure(let e) = outcome { err = e }
      observer(CallRecord(method: String(method.prefix(100)), known: spec != nil, requestID: ctx.requestID, seconds: seconds, error: err, internalDetail: internalDetail,
          internalDebugDetail: internalDebugDetail))
    }
    if isNotification { return nil }
    switch outcome {
    case .success(let result): return ["jsonrpc": "2.0", "id": replyID, "result": result]
    case .failure(let e): return Self.errorResponse(id: replyID, e)
    }
  }

  public static func errorResponse(id: JSONValue, _ error: RPCError) -> JSONValue {
    ["jsonrpc": "2.0", "id": id, "error": error.json]
  }

  // MARK: OpenRPC

  /// The OpenRPC document, built from the registered specs so it cannot drift from them.
  public func openRPCDocument() -> JSONValue {
    let specs = methods.current.values.sorted { $0.name < $1.name }
    let list: [JSONValue] = specs.filter { $0.name != "rpc.discover" }.map { spec in
      let params: [JSONValue] = spec.params.map { p in
        var o: [String: JSONValue] = ["name": .string(p.name), "required": .bool(p.required), "schema": p.schema.jsonSchema]
        if !p.description.isEmpty { o["description"] = .string(p.description) }
        return .object(o)
      }
      // What follows from the params (a workspace to find, an actor to
      // check), then what the method itself declares.
      var errors: [ErrorDoc] = []
      if spec.params.contains(where: { $0.name == "workspaceId" && $0.required }) { errors.append(.notFound("workspace_not_found")) }
      if spec.params.contains(where: { $0.name == "actor" }) {
        errors += [.forbidden("not_admin"), .forbidden("ops_not_permitted"), .forbidden("not_permitted")]
      }
      for e in errorDocs.withLock({ $0[spec.name] ?? [] }) where !errors.contains(e) { errors.append(e) }
      return [
        "name": .string(spec.name), "summary": .string(spec.summary), "paramStructure": "by-name",
        "params": .array(params), "result": ["name": "result", "summary": .string(spec.result), "schema": [:]],
        "errors": .array(errors.map(\.json)),
      ]
    }
    return [
      "openrpc": "1.2.6",
      "info": ["title": .string(title), "version": .string(version)],
      "methods": .array(list),
    ]
  }
}

extension Duration {
  /// The duration as fractional seconds (for logs and metrics).
  public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// An application error a method may answer with: its JSON-RPC code and the
/// stable `data.reason`.
public struct ErrorDoc: Sendable, Equatable {
  public let code: Int
  public let reason: String

  public static func invalid(_ reason: String) -> ErrorDoc { ErrorDoc(code: RPCError.Code.invalidParams, reason: reason) }
  public static func notFound(_ reason: String) -> ErrorDoc { ErrorDoc(code: RPCError.Code.notFound, reason: reason) }
  public static func conflict(_ reason: String) -> ErrorDoc { ErrorDoc(code: RPCError.Code.conflict, reason: reason) }
  public static func forbidden(_ reason: String) -> ErrorDoc { ErrorDoc(code: RPCError.Code.forbidden, reason: reason) }
  public static func unavailable(_ reason: String) -> ErrorDoc { ErrorDoc(code: RPCError.Code.unavailable, reason: reason) }

  /// An OpenRPC error object.
  public var json: JSONValue { ["code": .int(Int64(code)), "message": .string(reason), "data": ["reason": .string(reason)]] }
}

import JSON
import Synchronization

/// The type of one named parameter. The dispatcher checks every request
/// against it before a handler runs, and `rpc.discover` renders it as JSON Schema.
public indirect enum ParamSchema: Sendable {
  case string(maxLength: Int = 1000)
  case uuid
  case email
  case integer(min: Int64? = nil, max: Int64? = nil)
  case boolean
  case enumeration([String])
  /// An object with declared fields (checked recursively).
  case object([ParamSpec])
  /// Any JSON object (checked by the handler).
  case anyObject
  case array(ParamSchema, maxItems: Int = 1000)
  case any
  case nullable(ParamSchema)

  public static let string = ParamSchema.string()
  public static let integer = ParamSchema.integer()

  public var jsonSchema: JSONValue {
    switch self {
    case .string(let max): return ["type": "string", "maxLength": .int(max)]
    case .uuid: return ["type": "string", "format": "uuid"]
    case .email: return ["type": "string", "format": "email"]
    case .integer(let min, let max):
      var o: [String: JSONValue] = ["type": "integer"]
      if let min { o["minimum"] = .int(min) }
      if let max { o["maximum"] = .int(max) }
      return .object(o)
    case .boolean: return ["type": "boolean"]
    case .enumeration(let values): return ["type": "string", "enum": .array(values.map { .string($0) })]
    case .object(let fields):
      var props: [String: JSONValue] = [:]
      for f in fields { props[f.name] = f.schema.jsonSchema }
      return [
        "type": "object", "properties": .object(props), "additionalProperties": false,
        "required": .array(fields.filter(\.required).map { .string($0.name) }),
      ]
    case .anyObject: return ["type": "object"]
    case .array(let items, let maxItems): return ["type": "array", "items": items.jsonSchema, "maxItems": .int(maxItems)]
    case .any: return [:]
    case .nullable(let inner):
      return ["oneOf": [inner.jsonSchema, ["type": "null"]]]
    }
  }
}

public struct ParamSpec: Sendable {
  public var name: String
  public var schema: ParamSchema
  public var required: Bool
  public var description: String

  public init(_ name: String, _ schema: ParamSchema, required: Bool = true, _ description: String = "") {
    self.name = name
    self.schema = schema
    self.required = required
    self.description = description
  }

  public static func optional(_ name: String, _ schema: ParamSchema, _ description: String = "") -> ParamSpec {
    ParamSpec(name, schema, required: false, description)
  }
}

/// What a method handler sees of the caller.
public struct CallContext: Sendable {
  /// Peer credentials from SO_PEERCRED (nil when not on a Unix socket, e.g. in-process calls).
  public var peerUID: UInt32?
  public var peerGID: UInt32?
  public var peerPID: Int32?
  /// Process-unique id of this request, for logs.
  public var requestID: String
  /// Set only by the guided setup's pages (in-process, never from a
  /// socket): the setup link whose holder is acting (G1).
  public var setupLinkId: String?
  /// Set by a socket transport: lets a method keep the connection after its
  /// reply (events.subscribe streams on it). nil for in-process calls.
  public var handoff: ConnectionHandoff?

  public init(peerUID: UInt32? = nil, peerGID: UInt32? = nil, peerPID: Int32? = nil, requestID: String = "-") {
    self.peerUID = peerUID
    self.peerGID = peerGID
    self.peerPID = peerPID
    self.requestID = requestID
  }
}

public typealias MethodHandler = @Sendable (Params, CallContext) throws -> JSONValue

/// One registered method: its contract (for validation and OpenRPC) and its handler.
public struct MethodSpec: Sendable {
  public var name: String
  public var summary: String
  public var params: [ParamSpec]
  public var result: String
  public var handler: MethodHandler
  /// Whether an array of params is accepted and mapped onto `params` in order.
  /// Roster's own methods take named params only (SPEC); this exists so the
  /// JSON-RPC specification's positional examples can be served as written.
  public var acceptsPositional: Bool

  public init(
    _ name: String, summary: String, params: [ParamSpec] = [], result: String = "object", acceptsPositional: Bool = false,
    handler: @escaping MethodHandler
  ) {
    self.name = name
    self.summary = summary
    self.params = params
    self.result = result
    self.acceptsPositional = acceptsPositional
    self.handler = handler
  }
}

/// A connection a method may take over once its reply is written: the
/// transport then runs the method's streamer on the connection's own thread
/// and closes the connection when it returns.
public final class ConnectionHandoff: Sendable {
  public typealias Streamer = @Sendable (_ connection: any Sendable) -> Void
  private let next = Mutex<Streamer?>(nil)

  public init() {}

  public func afterReply(_ streamer: @escaping Streamer) { next.withLock { $0 = streamer } }

  /// The streamer to run now, if a method asked for one (once).
  public func take() -> Streamer? { next.withLock { s in defer { s = nil }; return s } }
}


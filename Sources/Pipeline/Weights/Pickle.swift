import Foundation
import PipelineFiles

/// A value built by the restricted unpickler. Containers that pickle mutates
/// after creating them (dicts, lists, objects) are reference types, so that a
/// memoised container fetched twice (BINGET) is the same container, as in Python.
public indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int64)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// A global that passed the allow-list; only the hooks give it meaning.
    case global(module: String, name: String)
    /// Whatever the hooks built (a tensor, a storage, an inert object).
    case opaque(AnyObject)

    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case let .global(m, n): return "\(m).\(n)"
        case let .opaque(o): return String(describing: type(of: o))
        }
    }
}

public final class PickleList { public var items: [PickleValue] = [] }

public final class PickleDict {
    public var items: [(key: PickleValue, value: PickleValue)] = []
    public func value(forString key: String) -> PickleValue? {
        // The last one wins, as when Python builds the dict.
        for (k, v) in items.reversed() { if case let .string(s) = k, s == key { return v } }
        return nil
    }
}

/// What a pickle's globals mean. The unpickler never imports or calls anything:
/// it asks `resolveGlobal` (which throws for names off the allow-list) and hands
/// REDUCE/NEWOBJ/BUILD/persistent ids to these hooks.
public protocol PickleHooks {
    func resolveGlobal(module: String, name: String) throws -> PickleValue
    func call(_ callable: PickleValue, args: [PickleValue]) throws -> PickleValue
    func newObject(_ cls: PickleValue, args: [PickleValue]) throws -> PickleValue
    /// BUILD: applies `state` to `object` and returns the object to keep.
    func build(_ object: PickleValue, state: PickleValue) throws -> PickleValue
    func persistentLoad(_ pid: PickleValue) throws -> PickleValue
}

/// A restricted unpickler for the opcodes of protocols 0–5 that `torch.save`
/// and ordinary containers produce. Every read is bounds-checked, and nesting is
/// bounded: a container may not change once it sits inside another one (which
/// also rules out cycles), so a hostile pickle can only produce an error, never
/// a deep recursion or an endless walk.
public struct Unpickler {
    struct Slot {
        var value: PickleValue
        /// Nesting depth of a value type (tuples, scalars); containers keep theirs in `objectDepth`.
        var depth: Int
    }

    let file: String
    let bytes: UnsafeRawBufferPointer
    let hooks: PickleHooks
    var stack: [Slot] = []
    var marks: [Int] = []
    var memo: [Int: Slot] = [:]
    var objectDepth: [ObjectIdentifier: Int] = [:]
    var sealed = Set<ObjectIdentifier>()
    /// Keeps every container alive until the end, so object identities stay unique.
    var retained: [AnyObject] = []

    public static let maxDepth = 256
    static let maxMarks = 10_000

    /// Names the pickle in errors ("data.pkl").
    let label: String
    /// The bytes consumed so far; after `load()`, the length of the pickle.
    public private(set) var pos = 0

    public init(file: String, bytes: UnsafeRawBufferPointer, hooks: PickleHooks, label: String = "data.pkl") {
        self.file = file
        self.bytes = bytes
        self.hooks = hooks
        self.label = label
    }

    func bad(_ reason: String, at: Int? = nil) -> WeightError {
        .malformed(file: file, reason: "\(label): \(reason) (byte \(at ?? pos))")
    }

    // MARK: reading

    mutating func read(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= bytes.count - pos else { throw bad("pickle ends early (truncated?)") }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: bytes[pos..<pos + n])
    }
    mutating func u8() throws -> UInt8 { try read(1)[0] }
    mutating func le<T: FixedWidthInteger>(_: T.Type) throws -> T {
        T(littleEndian: try read(MemoryLayout<T>.size).loadUnaligned(as: T.self))
    }
    mutating func length<T: FixedWidthInteger>(_: T.Type) throws -> Int {
        let v = try le(T.self)
        guard v >= 0, UInt64(v) <= UInt64(bytes.count - pos) else { throw bad("length \(v) runs past the end of the pickle") }
        return Int(v)
    }
    mutating func line() throws -> String {
        guard let nl = bytes[pos...].firstIndex(of: 0x0A) else { throw bad("unterminated text line (truncated?)") }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[pos..<nl]), as: UTF8.self)
        pos = nl + 1
        return s
    }
    mutating func text(_ n: Int) throws -> String {
        guard let s = String(validatingUTF8Bytes: try read(n)) else { throw bad("string is not valid UTF-8") }
        return s
    }
    mutating func latin1(_ n: Int) throws -> String {
        String(String.UnicodeScalarView(try read(n).map { Unicode.Scalar($0) }))
    }
    func int(_ b: UnsafeRawBufferPointer) throws -> Int64 {
        // Two's complement, little-endian, as LONG1/LONG4 store it.
        guard b.count <= 8 else { throw bad("integer of \(b.count) bytes does not fit 64 bits") }
        if b.isEmpty { return 0 }
        var v: UInt64 = 0
        for (i, x) in b.enumerated() { v |= UInt64(x) << (8 * UInt64(i)) }
        if b.count < 8, b[b.count - 1] & 0x80 != 0 { v |= ~0 << (8 * UInt64(b.count)) }
        return Int64(bitPattern: v)
    }

    // MARK: stack, memo, nesting

    static func object(_ v: PickleValue) -> AnyObject? {
        switch v {
        case let .list(l): return l
        case let .dict(d): return d
        case let .opaque(o): return o
        default: return nil
        }
    }
    func depth(_ s: Slot) -> Int {
        if let o = Self.object(s.value) { return objectDepth[ObjectIdentifier(o)] ?? s.depth }
        return s.depth
    }
    /// Seals `children` (they now sit inside something) and returns the depth of their parent.
    mutating func nest(_ children: [Slot]) throws -> Int {
        var d = 0
        for c in children {
            if let o = Self.object(c.value) { sealed.insert(ObjectIdentifier(o)) }
            d = max(d, depth(c))
        }
        guard d < Self.maxDepth else { throw bad("values nested more than \(Self.maxDepth) deep") }
        return d + 1
    }
    /// Registers a value the hooks or an opcode just made, `depth` deep.
    mutating func push(_ v: PickleValue, depth: Int) {
        if let o = Self.object(v) {
            let id = ObjectIdentifier(o)
            if objectDepth[id] == nil { retained.append(o) }
            objectDepth[id] = max(objectDepth[id] ?? 0, depth)
        }
        stack.append(Slot(value: v, depth: depth))
    }
    /// A container about to change: refused once it sits inside another value.
    mutating func mutate(_ v: PickleValue, adding children: [Slot]) throws {
        guard let o = Self.object(v) else { return }
        let id = ObjectIdentifier(o)
        guard !sealed.contains(id), !children.contains(where: { Self.object($0.value) === o }) else {
            throw bad("a \(v.kind) is modified after being placed in another value, or put inside itself (cyclic or hostile pickle)")
        }
        let d = try nest(children)
        objectDepth[id] = max(objectDepth[id] ?? 0, d)
    }
    mutating func pop() throws -> Slot {
        guard stack.count > (marks.last ?? 0), let v = stack.popLast() else { throw bad("stack underflow") }
        return v
    }
    mutating func popMark() throws -> [Slot] {
        guard let m = marks.popLast(), m <= stack.count else { throw bad("no MARK for this opcode") }
        defer { stack.removeSubrange(m...) }
        return Array(stack[m...])
    }
    func top() throws -> Slot {
        guard stack.count > (marks.last ?? 0), let v = stack.last else { throw bad("stack underflow") }
        return v
    }
    mutating func put(_ index: Int) throws {
        guard index >= 0 else { throw bad("memo index \(index) out of range") }
        memo[index] = try top()
    }
    mutating func get(_ index: Int) throws {
        guard let v = memo[index] else { throw bad("memo index \(index) was never stored") }
        stack.append(v)
    }
    mutating func tuple(_ n: Int) throws {
        guard stack.count - (marks.last ?? 0) >= n else { throw bad("stack underflow") }
        let items = Array(stack.suffix(n))
        stack.removeLast(n)
        push(.tuple(items.map(\.value)), depth: try nest(items))
    }
    mutating func newList(_ items: [Slot]) throws {
        let l = PickleList()
        l.items = items.map(\.value)
        push(.list(l), depth: try nest(items))
    }
    mutating func setItems(_ pairs: [Slot]) throws {
        guard pairs.count % 2 == 0 else { throw bad("SETITEMS with an odd number of items") }
        let target = try top()
        guard case let .dict(d) = target.value else { throw bad("SETITEM(S) on a \(target.value.kind), not a dict") }
        try mutate(target.value, adding: pairs)
        for i in stride(from: 0, to: pairs.count, by: 2) { d.items.append((pairs[i].value, pairs[i + 1].value)) }
    }
    mutating func appendItems(_ items: [Slot]) throws {
        let target = try top()
        guard case let .list(l) = target.value else { throw bad("APPEND(S) on a \(target.value.kind), not a list") }
        try mutate(target.value, adding: items)
        l.items.append(contentsOf: items.map(\.value))
    }
    /// Pops the argument tuple and the callable of REDUCE/NEWOBJ.
    mutating func callee(_ what: String, at: Int) throws -> (callee: Slot, args: [PickleValue], depth: Int) {
        let args = try pop(), callee = try pop()
        guard case let .tuple(a) = args.value else { throw bad("\(what) arguments are a \(args.value.kind), not a tuple", at: at) }
        return (callee, a, try nest([callee, args]))
    }

    /// Runs the pickle to its STOP and returns the value left on the stack.
    public mutating func load() throws -> PickleValue {
        while true {
            let at = pos
            let op = try u8()
            switch op {
            case 0x80: // PROTO
                let v = try u8()
                guard v <= 5 else { throw bad("pickle protocol \(v) is newer than 5", at: at) }
            case 0x95: _ = try le(UInt64.self) // FRAME: framing is transparent here
            case 0x2E: // STOP
                guard marks.isEmpty, stack.count == 1 else { throw bad("STOP with \(stack.count) values on the stack", at: at) }
                return stack[0].value
            case 0x28: // MARK
                guard marks.count < Self.maxMarks else { throw bad("MARKs nested too deeply", at: at) }
                marks.append(stack.count)
            case 0x30: _ = try pop() // POP
            case 0x31: _ = try popMark() // POP_MARK
            case 0x32: stack.append(try top()) // DUP
            case 0x4E: push(.none, depth: 0)
            case 0x88: push(.bool(true), depth: 0)
            case 0x89: push(.bool(false), depth: 0)
            case 0x4A: push(.int(Int64(try le(Int32.self))), depth: 0) // BININT
            case 0x4B: push(.int(Int64(try u8())), depth: 0) // BININT1
            case 0x4D: push(.int(Int64(try le(UInt16.self))), depth: 0) // BININT2
            case 0x8A: push(.int(try int(try read(Int(try u8())))), depth: 0) // LONG1
            case 0x8B: push(.int(try int(try read(try length(Int32.self)))), depth: 0) // LONG4
            case 0x49: // INT (text protocol)
                let s = try line()
                if s == "00" || s == "01" { push(.bool(s == "01"), depth: 0) } else {
                    guard let v = Int64(s) else { throw bad("bad INT '\(s)'", at: at) }
                    push(.int(v), depth: 0)
                }
            case 0x47: // BINFLOAT: big-endian double
                push(.float(Double(bitPattern: UInt64(bigEndian: try read(8).loadUnaligned(as: UInt64.self)))), depth: 0)
            case 0x58: push(.string(try text(try length(UInt32.self))), depth: 0) // BINUNICODE
            case 0x8D: push(.string(try text(try length(UInt64.self))), depth: 0) // BINUNICODE8
            case 0x8C: push(.string(try text(Int(try u8()))), depth: 0) // SHORT_BINUNICODE
            case 0x55: push(.string(try latin1(Int(try u8()))), depth: 0) // SHORT_BINSTRING (py2 str)
            case 0x54: push(.string(try latin1(try length(Int32.self))), depth: 0) // BINSTRING
            case 0x43: push(.bytes(Array(try read(Int(try u8())))), depth: 0) // SHORT_BINBYTES
            case 0x42: push(.bytes(Array(try read(try length(UInt32.self)))), depth: 0) // BINBYTES
            case 0x8E, 0x96: push(.bytes(Array(try read(try length(UInt64.self)))), depth: 0) // BINBYTES8, BYTEARRAY8
            case 0x7D: push(.dict(PickleDict()), depth: 1) // EMPTY_DICT
            case 0x5D, 0x8F: push(.list(PickleList()), depth: 1) // EMPTY_LIST, EMPTY_SET (a set is kept as a list)
            case 0x29: push(.tuple([]), depth: 1) // EMPTY_TUPLE
            case 0x90: try appendItems(try popMark()) // ADDITEMS
            case 0x6C, 0x91: try newList(try popMark()) // LIST, FROZENSET
            case 0x74: // TUPLE
                let items = try popMark()
                push(.tuple(items.map(\.value)), depth: try nest(items))
            case 0x85: try tuple(1)
            case 0x86: try tuple(2)
            case 0x87: try tuple(3)
            case 0x64: // DICT
                let items = try popMark()
                push(.dict(PickleDict()), depth: 1)
                try setItems(items)
            case 0x73: // SETITEM
                let v = try pop(), k = try pop()
                try setItems([k, v])
            case 0x75: try setItems(try popMark()) // SETITEMS
            case 0x61: try appendItems([try pop()]) // APPEND
            case 0x65: try appendItems(try popMark()) // APPENDS
            case 0x71: try put(Int(try u8())) // BINPUT
            case 0x72: try put(Int(try le(UInt32.self))) // LONG_BINPUT
            case 0x94: try put(memo.count) // MEMOIZE
            case 0x70: // PUT (text)
                guard let i = Int(try line()) else { throw bad("bad PUT index", at: at) }
                try put(i)
            case 0x68: try get(Int(try u8())) // BINGET
            case 0x6A: try get(Int(try le(UInt32.self))) // LONG_BINGET
            case 0x67: // GET (text)
                guard let i = Int(try line()) else { throw bad("bad GET index", at: at) }
                try get(i)
            case 0x63: // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                push(try hooks.resolveGlobal(module: module, name: name), depth: 0)
            case 0x93: // STACK_GLOBAL
                let n = try pop(), m = try pop()
                guard case let .string(module) = m.value, case let .string(name) = n.value else {
                    throw bad("STACK_GLOBAL needs two strings", at: at)
                }
                push(try hooks.resolveGlobal(module: module, name: name), depth: 0)
            case 0x52: // REDUCE
                let c = try callee("REDUCE", at: at)
                push(try hooks.call(c.callee.value, args: c.args), depth: c.depth)
            case 0x81: // NEWOBJ
                let c = try callee("NEWOBJ", at: at)
                push(try hooks.newObject(c.callee.value, args: c.args), depth: c.depth)
            case 0x92: // NEWOBJ_EX (cls, args, kwargs): keyword arguments are not honoured
                let kwargs = try pop()
                let c = try callee("NEWOBJ_EX", at: at)
                push(try hooks.newObject(c.callee.value, args: c.args), depth: max(c.depth, try nest([kwargs])))
            case 0x62: // BUILD
                let state = try pop(), obj = try pop()
                try mutate(obj.value, adding: [state])
                let built = try hooks.build(obj.value, state: state.value)
                push(built, depth: max(depth(obj), try nest([state])))
            case 0x51: // BINPERSID
                let pid = try pop()
                push(try hooks.persistentLoad(pid.value), depth: try nest([pid]))
            default:
                throw bad(String(format: "unsupported pickle opcode 0x%02x", op), at: at)
            }
        }
    }
}

extension String {
    init?(validatingUTF8Bytes b: UnsafeRawBufferPointer) {
        var it = b.makeIterator()
        var out = ""
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&it) {
            case let .scalarValue(s): out.unicodeScalars.append(s)
            case .emptyInput: break loop
            case .error: return nil
            }
        }
        self = out
    }
}

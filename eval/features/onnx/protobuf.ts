/**
 * The few parts of ONNX's protobuf schema (onnx.proto3, IR version 8) needed to write an inference
 * graph, encoded by hand: varints and length-delimited fields. Field numbers are from onnx.proto.
 */

/** Growable byte buffer with protobuf primitives. */
class Writer {
  private buf = new Uint8Array(256);
  length = 0;

  private reserve(n: number) {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  varint(v: number | bigint) {
    let x = BigInt.asUintN(64, BigInt(v));
    this.reserve(10);
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) byte |= 0x80;
      this.buf[this.length++] = byte;
    } while (x !== 0n);
  }

  bytes(b: Uint8Array) {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  tag(field: number, wire: 0 | 2 | 5) {
    this.varint((field << 3) | wire);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

const utf8 = new TextEncoder();

/** A message under construction: typed field writers that append to one buffer. */
export class Message {
  private w = new Writer();

  int(field: number, v: number | bigint): this {
    this.w.tag(field, 0);
    this.w.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.w.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.w.bytes(b);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.w.tag(field, 2);
    this.w.varint(b.length);
    this.w.bytes(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, utf8.encode(s));
  }

  message(field: number, m: Message): this {
    return this.bytes(field, m.finish());
  }

  /** Repeated int64 written packed (proto3's default for repeated scalars). */
  packedInts(field: number, values: readonly number[]): this {
    const inner = new Writer();
    for (const v of values) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.w.finish();
  }
}

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;
/** AttributeProto.AttributeType values used here. */
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

export type AttrValue = number | string | readonly number[] | { float: number };

export interface OnnxNode {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  attrs?: Record<string, AttrValue>;
}

export interface OnnxInitializer {
  name: string;
  dims: readonly number[];
  data: Float32Array | BigInt64Array;
}

export interface OnnxValue {
  name: string;
  /** Dimensions; a string is a symbolic (dynamic) dimension such as the batch. */
  shape: readonly (number | string)[];
}

export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  initializers: readonly OnnxInitializer[];
  inputs: readonly OnnxValue[];
  outputs: readonly OnnxValue[];
  opset: number;
  producer: string;
}

function attribute(name: string, v: AttrValue): Message {
  const m = new Message().string(1, name);
  if (typeof v === 'string') return m.bytes(4, utf8.encode(v)).int(20, AttrType.STRING);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`ONNX attribute ${name}: ${v} is not an integer (wrap floats as {float: x})`);
    return m.int(3, v).int(20, AttrType.INT);
  }
  if ('float' in v) return m.float(2, v.float).int(20, AttrType.FLOAT);
  return m.packedInts(8, v as readonly number[]).int(20, AttrType.INTS);
}

function tensor(t: OnnxInitializer): Message {
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (count !== t.data.length) throw new Error(`ONNX initializer ${t.name}: dims [${t.dims}] hold ${count} values, data has ${t.data.length}`);
  const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return new Message()
    .packedInts(1, t.dims)
    .int(2, t.data instanceof Float32Array ? DataType.FLOAT : DataType.INT64)
    .string(8, t.name)
    .bytes(9, raw);
}

function valueInfo(v: OnnxValue): Message {
  const shape = new Message();
  for (const d of v.shape) shape.message(1, typeof d === 'number' ? new Message().int(1, d) : new Message().string(2, d));
  const tensorType = new Message().int(1, DataType.FLOAT).message(2, shape);
  return new Message().string(1, v.name).message(2, new Message().message(1, tensorType));
}

/** Serialise a graph as an ONNX ModelProto (IR version 8). */
export function encodeModel(g: OnnxGraph): Uint8Array {
  const graph = new Message();
  g.nodes.forEach((n, i) => {
    const node = new Message();
    for (const x of n.inputs) node.string(1, x);
    for (const y of n.outputs) node.string(2, y);
    node.string(3, n.name ?? `${n.op}_${i}`).string(4, n.op);
    for (const [k, v] of Object.entries(n.attrs ?? {})) node.message(5, attribute(k, v));
    graph.message(1, node);
  });
  graph.string(2, g.name);
  for (const t of g.initializers) graph.message(5, tensor(t));
  for (const v of g.inputs) graph.message(11, valueInfo(v));
  for (const v of g.outputs) graph.message(12, valueInfo(v));
  return new Message()
    .int(1, 8)
    .string(2, g.producer)
    .message(7, graph)
    .message(8, new Message().string(1, '').int(2, g.opset))
    .finish();
}

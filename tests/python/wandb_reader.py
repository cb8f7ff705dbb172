"""Reader of W&B offline run files (run-<id>.wandb), written from W&B's published format and not
from bignlp's writer, for tests/unit/train/wandb_test.cpp.

Usage: wandb_reader.py RUN.wandb OUT.json

The file (W&B client datastore, the leveldb log layout):
  header: b":W&B", uint16 LE 0xBEE1, uint8 version 0 (7 bytes, the start of block 0)
  blocks of 32768 bytes; each holds records: uint32 LE checksum, uint16 LE length, uint8 type
  (1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST), data; checksum = zlib.crc32(data, zlib.crc32(bytes([type])));
  when fewer than 7 bytes are left in a block they are zeros and the next record starts the
  next block. A logical record is FULL, or FIRST MIDDLE* LAST.
Each logical record is a wandb_internal.Record protobuf, decoded here with a generic wire-format
parser and the field numbers of wandb_internal.proto.

Writes {"fragments": {type: count}, "trailers": n, "records": [...], "run": {...},
"config": {...}, "history": [{key: value}], "history_steps": [...], "summary": {...}, "exit": {...},
"final": bool, "header": bool}. Exits 1 with a message on any violation (bad header, CRC, framing,
non-zero trailer, truncated varint, unexpected record order).
"""
import json
import struct
import sys
import zlib

BLOCK = 32768
HEADER = 7


def fail(msg):
    print("wandb_reader: " + msg, file=sys.stderr)
    sys.exit(1)


def varint(buf, i):
    shift = 0
    value = 0
    while True:
        if i >= len(buf):
            fail("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            fail("varint too long")


def fields(buf):
    """{field number: [values]}: ints for varints, bytes for length-delimited."""
    out = {}
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(buf, i)
        elif wire == 2:
            n, i = varint(buf, i)
            if i + n > len(buf):
                fail(f"field {num}: length {n} past the end")
            v = bytes(buf[i:i + n])
            i += n
        elif wire == 1:
            v = struct.unpack_from("<Q", buf, i)[0]
            i += 8
        elif wire == 5:
            v = struct.unpack_from("<I", buf, i)[0]
            i += 4
        else:
            fail(f"wire type {wire} of field {num}")
        out.setdefault(num, []).append(v)
    return out


def one(f, num, default=None):
    v = f.get(num)
    return v[-1] if v else default


def text(f, num):
    v = one(f, num, b"")
    return v.decode("utf-8")


def items(buf_list):
    """ConfigItem / SummaryItem / HistoryItem: key 1, value_json 16."""
    out = {}
    for b in buf_list:
        f = fields(b)
        out[text(f, 1)] = json.loads(text(f, 16))
    return out


def logical_records(data):
    if len(data) < HEADER:
        fail("shorter than the header")
    ident, magic, version = struct.unpack_from("<4sHB", data, 0)
    if ident != b":W&B" or magic != 0xBEE1 or version != 0:
        fail(f"bad header {data[:7]!r}")
    pos = HEADER
    counts = {1: 0, 2: 0, 3: 0, 4: 0}
    trailers = 0
    records = []
    pending = None
    while pos < len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            if data[pos:pos + left] != b"\0" * left:
                fail(f"non-zero block trailer at offset {pos}")
            trailers += 1
            pos += left
            continue
        if pos + HEADER > len(data):
            fail(f"truncated record header at offset {pos}")
        crc, length, rtype = struct.unpack_from("<IHB", data, pos)
        if HEADER + length > left:
            fail(f"record at offset {pos} crosses its block")
        payload = data[pos + HEADER:pos + HEADER + length]
        if len(payload) != length:
            fail(f"truncated record at offset {pos}")
        if zlib.crc32(payload, zlib.crc32(bytes([rtype]))) & 0xFFFFFFFF != crc:
            fail(f"CRC mismatch at offset {pos}")
        if rtype not in counts:
            fail(f"record type {rtype} at offset {pos}")
        counts[rtype] += 1
        pos += HEADER + length
        if rtype == 1:
            if pending is not None:
                fail("FULL inside a split record")
            records.append(payload)
        elif rtype == 2:
            if pending is not None:
                fail("FIRST inside a split record")
            pending = payload
        elif rtype == 3:
            if pending is None:
                fail("MIDDLE without FIRST")
            pending += payload
        else:
            if pending is None:
                fail("LAST without FIRST")
            records.append(pending + payload)
            pending = None
    if pending is not None:
        fail("file ends inside a split record")
    return records, counts, trailers


NAMES = {2: "history", 3: "summary", 5: "config", 17: "run", 18: "exit", 20: "final", 21: "header"}


def main(path, out_path):
    with open(path, "rb") as f:
        data = f.read()
    raw, counts, trailers = logical_records(data)
    out = {"fragments": {str(k): v for k, v in counts.items()}, "trailers": trailers, "records": [],
           "history": [], "history_steps": [], "config": {}, "summary": {}, "header": False, "final": False}
    last_num = 0
    for r in raw:
        f = fields(r)
        num = one(f, 1, 0)
        if num <= last_num:
            fail(f"Record.num {num} after {last_num}")
        last_num = num
        kinds = [k for k in f if k in NAMES]
        if len(kinds) != 1:
            fail(f"record {num} has record_type fields {sorted(f)}")
        kind = NAMES[kinds[0]]
        out["records"].append(kind)
        body = fields(one(f, kinds[0]))
        if kind == "header":
            out["header"] = True
        elif kind == "run":
            ts = fields(one(body, 17, b""))
            out["run"] = {"run_id": text(body, 1), "entity": text(body, 2), "project": text(body, 3),
                          "config": items(fields(one(body, 4, b"")).get(1, [])), "group": text(body, 6),
                          "job_type": text(body, 7), "display_name": text(body, 8), "notes": text(body, 9),
                          "tags": [t.decode() for t in body.get(10, [])], "host": text(body, 13),
                          "start_time": one(ts, 1, 0)}
        elif kind == "config":
            out["config"].update(items(body.get(1, [])))
        elif kind == "history":
            out["history"].append(items(body.get(1, [])))
            out["history_steps"].append(one(fields(one(body, 2, b"")), 1, 0))
        elif kind == "summary":
            out["summary"].update(items(body.get(1, [])))
        elif kind == "exit":
            code = one(body, 1, 0)
            out["exit"] = {"exit_code": code - (1 << 64) if code >= 1 << 63 else code, "runtime": one(body, 2, 0)}
        elif kind == "final":
            out["final"] = True
    if out["records"][:2] != ["header", "run"]:
        fail(f"records start {out['records'][:2]}, expected header, run")
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

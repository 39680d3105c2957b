#!/usr/bin/env python3
"""Independent FedEx protocol client, written from docs/protocol.md alone (no code shared with the
TypeScript implementation). It runs K clients as concurrent WebSocket connections in one process,
so it knows every upload, and checks in float64 what the coordinator sends back:

  (a) the global adapter of round_start(r+1) / federation_done is the uniform mean of the adapters
      uploaded in round r;
  (b) the base update (residual) it receives, applied to its own float64 copy of the base, makes
      base_new + s*B̄*Ā equal the mean over clients of (base_old + s*B_i*A_i) (FedEx exactness);
  (c) round_closed(r) says aggregated: true and participants = K;
  (d) round_closed(r).modules[] residualNorm, deviation, relativeDeviation match the values
      computed here from the uploads and the new global adapter.

It does not train: client i's "trained" adapter in round r is the global adapter plus a seeded
Gaussian perturbation (std --noise) of A and B.

Usage: fedex_client.py URL --token T --model DIR [--clients 2] [--rounds N] [--out DIR]
Exit status: 0 all checks passed; 1 a check failed; 2 protocol / connection failure.

Needs Python 3 with numpy and websockets (Debian: python3-numpy python3-websockets).
Section numbers (§) refer to docs/protocol.md.
"""
import argparse
import asyncio
import hashlib
import json
import math
import os
import re
import struct
import sys
import time
import unicodedata

import numpy as np
import websockets

# §11 constants
MAGIC = b"FEDX"
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 1  # this client speaks document 1.1
PREFIX_BYTES = 12
TENSOR_ALIGN = 8
MAX_DIMS = 8
MAX_DIM = 2147483647
MAX_TENSOR_NAME = 300
MAX_FRAME_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 1048576
MAX_TENSORS = 65536
MAX_SAFE_INT = 2 ** 53 - 1

ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "uint8": 1}  # §4


class ProtocolError(Exception):
    """A §9/§10 protocol error: code + message."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CheckFailed(Exception):
    """One of the interop checks (a), (b), (c) or a consistency check failed."""


# ---------------------------------------------------------------------------------------------
# §2.2 string formats
FORMATS = {
    "id": re.compile(r"^[A-Za-z0-9_-]+$"),
    "module": re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$"),
    "hex64": re.compile(r"^[0-9a-f]{64}$"),
    "token": re.compile(r"^[\x21-\x7e]+$"),
    "filename": re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"),
    "code": re.compile(r"^E_[A-Z0-9_]+$"),
    "device": re.compile(r"^[A-Za-z0-9_.:-]+$"),
}
METHOD_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # §3.2
RECORD_KEY_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")  # §2.1
TEXT_FORBIDDEN = {0x061C, 0x200E, 0x200F, 0x2028, 0x2029} | set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def full_match(fmt, s):
    # Python's `$` also matches before a trailing "\n"; ECMAScript's (no m flag) does not.
    return FORMATS[fmt].match(s) is not None and not s.endswith("\n")


def is_text(s):
    return all(unicodedata.category(c) != "Cc" and ord(c) not in TEXT_FORBIDDEN for c in s)


def has_lone_surrogate(s):
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s)


# ---------------------------------------------------------------------------------------------
# §6 field tables, transcribed for the messages a client receives or sends. A type is a tuple:
#   ("int", lo, hi)  ("num", lo, lo_inclusive, hi, hi_inclusive)  ("bool",)  ("enum", values)
#   ("str", lo, hi, fmt)  ("text", lo, hi)  ("hex64",)  ("array", lo, hi, item)  ("object",)
#   ("record", n, value)
# Rows are (path, type, required); "a[].b" is field b of every item of array a.
INT = lambda lo, hi=None: ("int", lo, hi)  # noqa: E731
NUM = ("num", None, False, None, False)
OBJ = ("object",)

BASE_UPDATE_ROWS = [
    ("baseUpdate", OBJ, False),
    ("baseUpdate.fromRevision", INT(0, 1000000), True),
    ("baseUpdate.modules", ("array", 0, 100000, OBJ), True),
    ("baseUpdate.modules[].module", ("str", 1, 256, "module"), True),
    ("baseUpdate.modules[].form", ("enum", ("factored", "dense")), True),
    ("baseUpdate.modules[].innerDim", INT(0, 1048576), True),
    ("baseUpdate.modules[].scale", NUM, True),
]

FIELDS = {
    "hello": [
        ("protocolMajor", INT(1, 65535), True),
        ("protocolMinor", INT(0, 65535), True),
        ("token", ("str", 1, 512, "token"), True),
        ("clientName", ("text", 1, 64), True),
        ("clientId", ("str", 1, 64, "id"), False),
        ("resumeSessionId", ("str", 1, 64, "id"), False),
        ("device", ("str", 1, 64, "device"), True),
        ("baseModelHash", ("hex64",), False),
        ("baseRevision", INT(0, 1000000), False),
        ("capabilities", OBJ, True),
        ("capabilities.uplinkDtypes", ("array", 1, 3, ("enum", ("float32", "float16", "bfloat16"))), True),
        ("capabilities.factoredResidual", ("bool",), True),
        ("capabilities.modelTransfer", ("bool",), True),
        ("capabilities.maxFrameBytes", INT(4096), True),
    ],
    "welcome": [
        ("sessionId", ("str", 1, 64, "id"), True),
        ("protocolMinor", INT(0, 65535), True),
        ("currentRound", INT(0, 1000000), True),
        ("config", OBJ, True),
        ("config.method", ("enum", ("fedex", "fedit", "ffa")), True),
        ("config.rounds", INT(1, 1000000), True),
        ("config.localSteps", INT(1, 100000000), False),
        ("config.localEpochs", ("num", 0, False, 10000, True), False),
        ("config.batchSize", INT(1, 65536), True),
        ("config.rank", INT(1, 4096), True),
        ("config.alpha", ("num", 0, False, None, False), True),
        ("config.rsLora", ("bool",), True),
        ("config.targetModules", ("array", 1, 1024, ("str", 1, 128, "module")), True),
        ("config.lr", ("num", 0, False, 10, True), True),
        ("config.seed", INT(0, 4294967295), True),
        ("config.weighting", ("enum", ("uniform", "examples")), True),
        ("config.resetOptimizer", ("bool",), True),
        ("config.uplinkDtype", ("enum", ("float32", "float16", "bfloat16")), True),
        ("config.baseModelHash", ("hex64",), True),
        ("config.layout", ("array", 1, 100000, OBJ), True),
        ("config.layout[].module", ("str", 1, 256, "module"), True),
        ("config.layout[].in", INT(1, 16777216), True),
        ("config.layout[].out", INT(1, 16777216), True),
        ("config.layout[].rank", INT(1, 4096), True),
        ("config.layout[].fanInFanOut", ("bool",), True),
        ("limits", OBJ, True),
        ("limits.maxFrameBytes", INT(4096), True),
        ("limits.maxChunkBytes", INT(1), True),
        ("limits.heartbeatMs", INT(100, 3600000), True),
        ("limits.maxUpdateNorm", ("num", 0, False, None, False), False),
        ("baseModel", OBJ, False),
        ("baseModel.hash", ("hex64",), True),
        ("baseModel.files", ("array", 1, 1024, OBJ), True),
        ("baseModel.files[].name", ("str", 1, 128, "filename"), True),
        ("baseModel.files[].bytes", INT(0), True),
        ("baseModel.files[].sha256", ("hex64",), True),
    ],
    "reject": [
        ("code", ("str", 3, 64, "code"), True),
        ("message", ("text", 0, 1024), True),
        ("retryAfterMs", INT(0), False),
    ],
    "round_start": [
        ("round", INT(1, 1000000), True),
        ("deadline", INT(0), True),
        ("timeLimitMs", INT(0), True),
        ("baseRevision", INT(0, 1000000), True),
    ] + BASE_UPDATE_ROWS,
    "client_update": [
        ("round", INT(1, 1000000), True),
        ("examples", INT(0), True),
        ("trainLoss", NUM, True),
        ("steps", INT(0), False),
        ("durationMs", INT(0), False),
        ("metrics", ("record", 64, NUM), False),
    ],
    "client_failed": [("round", INT(1, 1000000), True), ("reason", ("text", 0, 1024), True)],  # 1.1, never sent here
    "update_ack": [("round", INT(1, 1000000), True)],
    "update_rejected": [
        ("round", INT(1, 1000000), True),
        ("code", ("str", 3, 64, "code"), True),
        ("reason", ("text", 0, 1024), True),
    ],
    "round_closed": [
        ("round", INT(1, 1000000), True),
        ("participants", INT(0), True),
        ("dropped", INT(0), True),
        ("durationMs", INT(0), True),
        ("baseRevision", INT(0, 1000000), True),
        ("loss", OBJ, False),
        ("loss.mean", NUM, True),
        ("loss.min", NUM, True),
        ("loss.max", NUM, True),
        ("modules", ("array", 0, 100000, OBJ), True),
        ("modules[].module", ("str", 1, 256, "module"), True),
        ("modules[].deviation", ("num", 0, True, None, False), True),
        ("modules[].relativeDeviation", ("num", 0, True, None, False), True),
        ("modules[].residualNorm", ("num", 0, True, None, False), True),
    ],
    "ping": [("nonce", INT(0, 4294967295), True), ("sentAt", INT(0), True)],
    "pong": [("nonce", INT(0, 4294967295), True)],
    "leave": [("reason", ("text", 0, 256), False)],
    "federation_done": [
        ("roundsCompleted", INT(0, 1000000), True),
        ("reason", ("enum", ("completed", "stopped", "failed")), True),
        ("message", ("text", 0, 1024), False),
        ("baseRevision", INT(0, 1000000), True),
    ] + BASE_UPDATE_ROWS,
    "error": [
        ("code", ("str", 3, 64, "code"), True),
        ("message", ("text", 0, 1024), True),
        ("fatal", ("bool",), True),
        ("round", INT(1, 1000000), False),
    ],
}
# Fields added by minor versions: (method, row, minor that added it). Only accepted when the
# negotiated minor is at least that.
MINOR_FIELDS = [
    ("welcome", ("limits.maxHeaderBytes", INT(1), False), 1),
    ("welcome", ("limits.maxTensors", INT(1), False), 1),
    ("welcome", ("limits.maxProtocolErrors", INT(1), False), 1),
    ("round_closed", ("aggregated", ("bool",), False), 1),  # 1.1: whether the round produced an aggregate
]
SENDER = {  # §6: who may send each method
    "hello": "client", "welcome": "coordinator", "reject": "coordinator", "round_start": "coordinator",
    "client_update": "client", "client_failed": "client", "update_ack": "coordinator", "update_rejected": "coordinator",
    "round_closed": "coordinator", "ping": "both", "pong": "both", "leave": "client",
    "federation_done": "coordinator", "error": "both", "model_request": "client", "model_chunk": "coordinator",
}
TENSOR_POLICY = {"round_start": "global", "federation_done": "global", "client_update": "adapter", "model_chunk": "blob"}


def is_int(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and float(v).is_integer() and abs(v) <= MAX_SAFE_INT


def check_type(path, v, t):
    def bad(why):
        raise ProtocolError("E_SCHEMA", f"{path}: {why} (got {json.dumps(v)[:80]})")

    kind = t[0]
    if kind == "int":
        if not is_int(v):
            bad("not an integer")
        if v < t[1] or (t[2] is not None and v > t[2]):
            bad(f"out of range {t[1]}..{t[2]}")
    elif kind == "num":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            bad("not a finite number")
        _, lo, lo_inc, hi, hi_inc = t
        if lo is not None and (v < lo or (v == lo and not lo_inc)):
            bad("below range")
        if hi is not None and (v > hi or (v == hi and not hi_inc)):
            bad("above range")
    elif kind == "bool":
        if not isinstance(v, bool):
            bad("not a boolean")
    elif kind == "enum":
        if v not in t[1]:
            bad(f"not one of {t[1]}")
    elif kind in ("str", "text", "hex64"):
        if not isinstance(v, str):
            bad("not a string")
        if has_lone_surrogate(v):
            bad("lone surrogate")
        if kind == "hex64":
            if not full_match("hex64", v):
                bad("not hex64")
            return
        lo, hi = t[1], t[2]
        if not lo <= len(v) <= hi:
            bad(f"length not in {lo}..{hi}")
        if kind == "text" and not is_text(v):
            bad("forbidden character in text")
        if kind == "str" and not full_match(t[3], v):
            bad(f"does not match format {t[3]}")
    elif kind == "array":
        if not isinstance(v, list):
            bad("not an array")
        if not t[1] <= len(v) <= t[2]:
            bad(f"length not in {t[1]}..{t[2]}")
        if t[3] != OBJ:
            for i, item in enumerate(v):
                check_type(f"{path}[{i}]", item, t[3])
    elif kind == "object":
        if not isinstance(v, dict):
            bad("not an object")
    elif kind == "record":
        if not isinstance(v, dict) or len(v) > t[1]:
            bad("not a record")
        for k, item in v.items():
            if not RECORD_KEY_RE.match(k) or k.endswith("\n") or k in ("__proto__", "constructor", "prototype"):
                bad(f"bad record key {k!r}")
            check_type(f"{path}.{k}", item, t[2])
    else:  # pragma: no cover
        raise AssertionError(kind)


def validate_params(method, params, minor):
    """§2, §6: every field listed, required ones present, no unknown field at any level."""
    rows = list(FIELDS[method]) + [row for (m, row, since) in MINOR_FIELDS if m == method and minor >= since]
    children = {}
    for path, t, req in rows:
        parent, _, name = path.rpartition(".")
        children.setdefault(parent, []).append((name, path, t, req))

    def walk(obj, schema_path, shown):
        for key in obj:
            if key not in {n for n, _, _, _ in children.get(schema_path, [])}:
                raise ProtocolError("E_SCHEMA", f"{method}: unknown field {shown + key if not shown else shown + '.' + key}")
        for name, path, t, req in children.get(schema_path, []):
            here = f"{shown}.{name}" if shown else name
            if name not in obj:
                if req:
                    raise ProtocolError("E_SCHEMA", f"{method}: missing required field {here}")
                continue
            v = obj[name]
            if v is None:
                raise ProtocolError("E_SCHEMA", f"{method}: {here} is null")
            check_type(f"{method}.{here}", v, t)
            if t == OBJ:
                walk(v, path, here)
            elif t[0] == "array" and t[3] == OBJ:
                for i, item in enumerate(v):
                    if not isinstance(item, dict):
                        raise ProtocolError("E_SCHEMA", f"{method}: {here}[{i}] is not an object")
                    walk(item, path + "[]", f"{here}[{i}]")

    walk(params, "", "")


# ---------------------------------------------------------------------------------------------
# §3 frames


def _reject_constant(name):
    raise ValueError(f"non-finite JSON number {name}")


def _parse_float(s):
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(f"JSON number {s} is not finite")
    return v


def _no_duplicate_keys(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError(f"duplicate JSON key {k!r}")
        obj[k] = v
    return obj


def encode_frame(method, params, tensors=()):
    """tensors: sequence of (name, float32 numpy array). Packs them in order, 8-byte aligned (§3.2)."""
    table, parts, end = [], [], 0
    for name, arr in tensors:
        a = np.ascontiguousarray(arr, dtype="<f4")
        offset = (end + TENSOR_ALIGN - 1) // TENSOR_ALIGN * TENSOR_ALIGN
        table.append({"name": name, "dtype": "float32", "shape": list(a.shape), "offset": offset, "length": a.nbytes})
        parts.append((offset, a.tobytes()))
        end = offset + a.nbytes
    header = json.dumps({"method": method, "params": params, "tensors": table}, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    header += b" " * ((-(PREFIX_BYTES + len(header))) % TENSOR_ALIGN)
    data = bytearray(end)
    for offset, raw in parts:
        data[offset:offset + len(raw)] = raw
    return MAGIC + struct.pack("<HHI", PROTOCOL_MAJOR, 0, len(header)) + header + bytes(data)


def widen(raw, dtype, shape):
    """§4: decode a tensor's bytes to float32 (float16 / bfloat16 widened exactly)."""
    if dtype == "float32":
        a = np.frombuffer(raw, dtype="<f4")
    elif dtype == "float16":
        a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif dtype == "bfloat16":
        a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        a = np.frombuffer(raw, dtype=np.uint8)
    return a.reshape(shape) if shape else a.reshape(())


def decode_frame(frame, max_frame=MAX_FRAME_BYTES):
    """§9 checks 1-13a; returns (method, params, {name: (dtype, array)})."""
    n = len(frame)
    if n > max_frame:
        raise ProtocolError("E_TOO_LARGE", f"frame of {n} bytes")
    if n < PREFIX_BYTES:
        raise ProtocolError("E_TRUNCATED", "frame shorter than its prefix")
    if frame[:4] != MAGIC:
        raise ProtocolError("E_MAGIC", "bad magic")
    version, flags, h = struct.unpack_from("<HHI", frame, 4)
    if version != PROTOCOL_MAJOR:
        raise ProtocolError("E_VERSION", f"frame version {version}")
    if flags != 0:
        raise ProtocolError("E_MALFORMED", f"flags {flags}")
    if h > MAX_HEADER_BYTES:
        raise ProtocolError("E_TOO_LARGE", f"header of {h} bytes")
    if PREFIX_BYTES + h > n:
        raise ProtocolError("E_TRUNCATED", "frame ends inside its header")
    if (PREFIX_BYTES + h) % TENSOR_ALIGN:
        raise ProtocolError("E_MALFORMED", "data section not 8-byte aligned")
    try:
        text = bytes(frame[PREFIX_BYTES:PREFIX_BYTES + h]).decode("utf-8")
        if text.startswith("\ufeff"):
            raise ValueError("byte-order mark")
        header = json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float, object_pairs_hook=_no_duplicate_keys)
    except ValueError as e:
        raise ProtocolError("E_MALFORMED", f"header is not UTF-8 JSON: {e}")
    if not isinstance(header, dict) or set(header) != {"method", "params", "tensors"}:
        raise ProtocolError("E_MALFORMED", "header must have exactly method, params, tensors")
    method, params, table = header["method"], header["params"], header["tensors"]
    if not isinstance(method, str) or not METHOD_RE.match(method) or method.endswith("\n"):
        raise ProtocolError("E_MALFORMED", f"bad method {method!r}")
    if not isinstance(params, dict) or not isinstance(table, list):
        raise ProtocolError("E_MALFORMED", "params must be an object, tensors an array")
    if len(table) > MAX_TENSORS:
        raise ProtocolError("E_TOO_LARGE", f"{len(table)} tensors")
    data_start = PREFIX_BYTES + h
    data_len = n - data_start
    seen, spans = set(), []
    for entry in table:
        if not isinstance(entry, dict) or set(entry) != {"name", "dtype", "shape", "offset", "length"}:
            raise ProtocolError("E_TENSOR_TABLE", "tensor entry must have exactly name, dtype, shape, offset, length")
        name = entry["name"]
        if not isinstance(name, str) or len(name) > MAX_TENSOR_NAME or not full_match("module", name) or name in seen:
            raise ProtocolError("E_TENSOR_NAME", f"bad or duplicate tensor name {name!r}")
        seen.add(name)
        if entry["dtype"] not in ITEMSIZE:
            raise ProtocolError("E_TENSOR_DTYPE", f"unknown dtype {entry['dtype']!r}")
        shape, offset, length = entry["shape"], entry["offset"], entry["length"]
        if (not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(is_int(d) and 0 <= d <= MAX_DIM for d in shape)
                or not is_int(offset) or offset < 0 or offset % TENSOR_ALIGN or not is_int(length)
                or length != math.prod(int(d) for d in shape) * ITEMSIZE[entry["dtype"]]):
            raise ProtocolError("E_TENSOR_TABLE", f"bad shape/offset/length for {name}")
        spans.append((int(offset), int(length), name, entry["dtype"], [int(d) for d in shape]))
    for offset, length, name, _, _ in spans:
        if offset + length > data_len:
            raise ProtocolError("E_TENSOR_BOUNDS", f"{name} outside the data section")
    nonempty = sorted((o, l, nm) for o, l, nm, _, _ in spans if l > 0)
    for (o1, l1, n1), (o2, _, n2) in zip(nonempty, nonempty[1:]):
        if o1 + l1 > o2:
            raise ProtocolError("E_TENSOR_OVERLAP", f"{n1} overlaps {n2}")
    last_end = max((o + l for o, l, _, _, _ in spans), default=0)
    if data_len > (last_end + TENSOR_ALIGN - 1) // TENSOR_ALIGN * TENSOR_ALIGN:
        raise ProtocolError("E_TENSOR_BOUNDS", f"{data_len - last_end} bytes after the last tensor")
    tensors = {}
    for offset, length, name, dtype, shape in spans:
        raw = bytes(frame[data_start + offset:data_start + offset + length])
        tensors[name] = (dtype, widen(raw, dtype, shape))
    return method, params, tensors


# ---------------------------------------------------------------------------------------------
# safetensors (8-byte LE header length, JSON header, data) and the §8 model hash


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack_from("<Q", buf, 0)
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    base = 8 + n
    dtypes = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": None}
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = buf[base + start:base + end]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in dtypes:
            arr = np.frombuffer(raw, dtype=dtypes[info["dtype"]])
        else:
            continue  # integer tensors: never adapted
        out[key] = arr.astype(np.float64).reshape(info["shape"])
    return out


def model_manifest(folder):
    """§8 "Which files": config.json, model.safetensors, model.safetensors.index.json + the shards its
    weight_map names, tokenizer.json, tokenizer_config.json — those present, in that order."""
    names = [n for n in ("config.json", "model.safetensors") if os.path.isfile(os.path.join(folder, n))]
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(index):
        names.append("model.safetensors.index.json")
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        for shard in weight_map.values():  # order of first appearance (§8 does not say)
            if shard not in names:
                names.append(shard)
    names += [n for n in ("tokenizer.json", "tokenizer_config.json") if os.path.isfile(os.path.join(folder, n))]
    files = []
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            content = f.read()
        files.append({"name": name, "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()})
    return files


def manifest_hash(files):
    text = "".join(f"{f['sha256']} {f['bytes']} {f['name']}\n" for f in files)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_base(folder, layout):
    """Float64 copies of the adapted modules' weights, keyed by module, in storage orientation."""
    paths = [os.path.join(folder, "model.safetensors")]
    index = os.path.join(folder, "model.safetensors.index.json")
    if not os.path.isfile(paths[0]) and os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            paths = [os.path.join(folder, s) for s in dict.fromkeys(json.load(f)["weight_map"].values())]
    weights = {}
    for p in paths:
        weights.update(read_safetensors(p))
    base, keys = {}, {}
    for m in layout:
        module = m["module"]
        # §5.5: candidate checkpoint keys, in order; the first the checkpoint holds is W0.
        p = module[len("base_model.model."):] if module.startswith("base_model.model.") else module
        candidates = [p + ".weight"]
        for prefix in ("base_model.model.", "transformer.", "model.", "bert.", "roberta."):
            if p.startswith(prefix):
                candidates.append(p[len(prefix):] + ".weight")
        candidates += [prefix + p + ".weight" for prefix in ("transformer.", "model.", "bert.", "roberta.")]
        candidates = list(dict.fromkeys(candidates))
        key = next((k for k in candidates if k in weights), None)
        if key is None:
            raise CheckFailed(f"base weight of {module} not found in the checkpoint (tried {candidates[:2]})")
        w = weights[key]
        want = (m["in"], m["out"]) if m["fanInFanOut"] else (m["out"], m["in"])
        if tuple(w.shape) != want:
            raise CheckFailed(f"{key} has shape {list(w.shape)}, layout says {list(want)} (fanInFanOut={m['fanInFanOut']})")
        base[module] = w.copy()
        keys[module] = key
    return base, keys


# ---------------------------------------------------------------------------------------------
# federation state shared by the K connections of this process


def rel(err, ref):
    return float(err) / float(ref) if ref > 0 else float(err)


class Shared:
    def __init__(self, args, manifest, model_hash):
        self.args = args
        self.manifest = manifest
        self.model_hash = model_hash
        self.uploads = {}  # round -> {client index: {module: (A float32, B float32)}}
        self.round_base = {}  # round -> {module: float64 base in linear orientation at round start}
        self.round_global = {}  # round -> {module: (A, B)} global adapter the round started from
        self.closed = {}  # round -> round_closed params (as seen by the first client)
        self.errors = {}  # round -> {"a": max, "b": max, "b_resid": max}
        self.reported = set()
        self.pristine = None
        self.keys = None
        self.layout = None
        self.config = None
        self.final = {}  # client index -> (base, global)
        self.final_revision = None
        self.minor = None
        self.forms = {}  # base revision -> residual forms received ("dense", "factored(k=24)")


def scaling(config, rank):
    return config["alpha"] / (math.sqrt(rank) if config["rsLora"] else rank)


class Client:
    def __init__(self, index, shared):
        self.i = index
        self.s = shared
        self.name = f"py-client-{index}"
        self.client_id = f"py{index}-{os.getpid()}"
        self.phase = "connecting"
        self.round = 0
        self.closed = 0
        self.revision = 0
        self.base = None  # {module: float64, storage orientation}
        self.global_ = None
        self.acked = set()
        self.last_sent = 0.0
        self.last_heard = 0.0
        self.nonce = 0
        self.pings = set()
        self.rounds_uploaded = 0
        self.silence_reported = False

    def log(self, msg):
        if self.s.args.verbose:
            print(f"[{self.name}] {msg}", flush=True)

    async def send(self, ws, method, params, tensors=()):
        validate_params(method, params, self.s.minor if self.s.minor is not None else PROTOCOL_MINOR)
        frame = encode_frame(method, params, tensors)
        if self.limits:  # §11: never send beyond the coordinator's announced limits
            (h,) = struct.unpack_from("<I", frame, 8)
            if (len(frame) > self.limits["maxFrameBytes"] or h > self.limits.get("maxHeaderBytes", MAX_HEADER_BYTES)
                    or len(tensors) > self.limits.get("maxTensors", MAX_TENSORS)):
                raise ProtocolError("E_TOO_LARGE", f"{method} frame ({len(frame)} bytes, header {h}) exceeds the coordinator's limits")
        self.last_sent = time.monotonic()
        await ws.send(frame)

    limits = None

    # --- §7.1 state machine (client's view) ------------------------------------------------
    def advance(self, method, params):
        ph = self.phase
        active = ("idle", "training", "uploaded")
        if method == "welcome" and ph == "handshaking":
            self.phase, self.round, self.closed = "idle", 0, max(0, params["currentRound"] - 1)
        elif method == "reject" and ph == "handshaking":
            self.phase = "closed"
        elif method in ("ping", "pong") and ph in ("handshaking",) + active + ("done",):
            pass
        elif method == "error" and ph != "closed":
            if params["fatal"]:
                self.phase = "closed"
        elif method == "round_start" and ph in active:
            r = params["round"]
            if not (r > self.round and r > self.closed):
                raise ProtocolError("E_ROUND_MISMATCH", f"round_start({r}) with round={self.round}, closed={self.closed}")
            self.phase, self.round = "training", r
        elif method in ("update_ack", "update_rejected") and ph in active:
            if params["round"] > self.round:
                raise ProtocolError("E_ROUND_MISMATCH", f"{method}({params['round']}) but round={self.round}")
        elif method == "round_closed" and ph in active:
            r = params["round"]
            if not (r > self.closed and r >= self.round):
                raise ProtocolError("E_ROUND_MISMATCH", f"round_closed({r}) with round={self.round}, closed={self.closed}")
            self.phase, self.closed = "idle", r
        elif method == "federation_done" and ph in active:
            self.phase = "done"
        elif method == "model_chunk" and ph in active:
            pass
        else:
            raise ProtocolError("E_STATE", f"{method} not allowed in phase {ph}")

    # --- §5.2 tensor policy + §9 checks 17-20 -------------------------------------------------
    def check_tensors(self, method, params, tensors):
        policy = TENSOR_POLICY.get(method, "none")
        if policy == "none":
            if tensors:
                raise ProtocolError("E_TENSOR_NAME", f"{method} carries tensors")
            return
        if policy == "blob":
            raise ProtocolError("E_STATE", "model_chunk was never requested")
        for name, (dtype, _) in tensors.items():
            if dtype != "float32":  # §4: float32 is the only dtype of downlink tensors
                raise ProtocolError("E_TENSOR_DTYPE", f"{name} is {dtype}")
        layout = {m["module"]: m for m in self.s.layout}
        expected = {}
        for m in self.s.layout:
            expected[m["module"] + ".lora_A"] = (m["rank"], m["in"])
            expected[m["module"] + ".lora_B"] = (m["out"], m["rank"])
        bu = params.get("baseUpdate")
        if bu is not None:
            if not bu["fromRevision"] < params["baseRevision"]:
                raise ProtocolError("E_SCHEMA", "baseUpdate.fromRevision must be < baseRevision")
            seen = set()
            for e in bu["modules"]:
                mod = e["module"]
                if mod in seen:
                    raise ProtocolError("E_SCHEMA", f"module {mod} twice in baseUpdate")
                seen.add(mod)
                if mod not in layout:
                    raise ProtocolError("E_SCHEMA", f"baseUpdate names {mod}, not in the layout")
                L = layout[mod]
                if e["form"] == "factored":
                    if e["innerDim"] < 1:
                        raise ProtocolError("E_SCHEMA", f"{mod}: factored with innerDim 0")
                    expected[mod + ".residual_P"] = (L["out"], e["innerDim"])
                    expected[mod + ".residual_Q"] = (e["innerDim"], L["in"])
                else:
                    if e["innerDim"] != 0:
                        raise ProtocolError("E_SCHEMA", f"{mod}: dense with innerDim {e['innerDim']}")
                    expected[mod + ".residual"] = (L["out"], L["in"])
        if set(tensors) != set(expected):
            raise ProtocolError("E_TENSOR_NAME", f"{method}: tensors {sorted(set(tensors) ^ set(expected))[:4]} missing or unexpected")
        for name, shape in expected.items():
            if tuple(tensors[name][1].shape) != shape:
                raise ProtocolError("E_TENSOR_SHAPE", f"{name} has shape {list(tensors[name][1].shape)}, expected {list(shape)}")
            if not np.all(np.isfinite(tensors[name][1])):
                raise ProtocolError("E_NON_FINITE", f"{name} holds a non-finite value")

    # --- §5.3 / §5.4 ------------------------------------------------------------------------
    def apply_base_update(self, params, tensors):
        bu = params.get("baseUpdate")
        target = params["baseRevision"]
        if bu is None:
            if self.revision != target:
                raise ProtocolError("E_BASE_MISMATCH", f"holding revision {self.revision}, message says {target} without baseUpdate")
            return
        if bu["fromRevision"] != self.revision:
            if bu["fromRevision"] != 0:
                raise ProtocolError("E_BASE_MISMATCH", f"update from revision {bu['fromRevision']}, holding {self.revision}")
            self.base = {k: v.copy() for k, v in self.s.pristine.items()}  # reload the pristine base
        layout = {m["module"]: m for m in self.s.layout}
        forms = self.s.forms.setdefault(target, set())
        for e in bu["modules"]:
            mod = e["module"]
            forms.add(f"{e['form']}" + (f"(k={e['innerDim']})" if e["form"] == "factored" else ""))
            if e["form"] == "factored":
                P = tensors[mod + ".residual_P"][1].astype(np.float64)
                Q = tensors[mod + ".residual_Q"][1].astype(np.float64)
                dW = e["scale"] * (P @ Q)
            else:
                dW = e["scale"] * tensors[mod + ".residual"][1].astype(np.float64)
            self.base[mod] += dW.T if layout[mod]["fanInFanOut"] else dW
        self.revision = target

    def linear_base(self):
        """The base in nn.Linear orientation (out x in), float64."""
        return {m["module"]: (self.base[m["module"]].T if m["fanInFanOut"] else self.base[m["module"]]) for m in self.s.layout}

    def read_global(self, tensors):
        return {m["module"]: (tensors[m["module"] + ".lora_A"][1].copy(), tensors[m["module"] + ".lora_B"][1].copy()) for m in self.s.layout}

    # --- the checks (a), (b) ------------------------------------------------------------------
    def verify_aggregate(self, r, global_, where):
        """After round r aggregated: global_ must be the mean of round r's uploads (a), and the base
        this client now holds + s*B̄*Ā must equal mean_i(base at round r's start + s*B_i*A_i) (b)."""
        ups = self.s.uploads.get(r, {})
        if len(ups) != self.s.args.clients:
            raise CheckFailed(f"{where}: round {r} aggregated but this process holds {len(ups)} uploads, expected {self.s.args.clients}")
        start_base = self.s.round_base[r]
        start_global = self.s.round_global[r]
        lin = self.linear_base()
        worst_a = worst_b = worst_b_resid = worst_d = 0.0
        for m in self.s.layout:
            mod = m["module"]
            s = scaling(self.s.config, m["rank"])
            As = [ups[i][mod][0].astype(np.float64) for i in sorted(ups)]
            Bs = [ups[i][mod][1].astype(np.float64) for i in sorted(ups)]
            A_mean, B_mean = sum(As) / len(As), sum(Bs) / len(Bs)
            A_g, B_g = (x.astype(np.float64) for x in global_[mod])
            # (a) uniform mean of the uploads (float32 round-off: relative 1e-6)
            ea = max(rel(np.linalg.norm(A_g - A_mean), np.linalg.norm(A_mean)), rel(np.linalg.norm(B_g - B_mean), np.linalg.norm(B_mean)))
            worst_a = max(worst_a, ea)
            if ea > self.s.args.tol_mean:
                raise CheckFailed(f"(a) {where}, module {mod}: global adapter differs from the mean of the {len(As)} uploads of round {r}: relative error {ea:.3e} > {self.s.args.tol_mean:g}")
            # (b) exactness: base_new + s*B̄Ā = mean_i(base_old + s*B_i*A_i)
            ideal = start_base[mod] + s * sum(B @ A for A, B in zip(As, Bs)) / len(As)
            got = lin[mod] + s * (B_g @ A_g)
            A0, B0 = (x.astype(np.float64) for x in start_global[mod])
            update = np.linalg.norm(s * sum(B @ A for A, B in zip(As, Bs)) / len(As) - s * (B0 @ A0))
            err = np.linalg.norm(got - ideal)
            eb = rel(err, update)
            resid = np.linalg.norm(lin[mod] - start_base[mod])
            worst_b = max(worst_b, eb)
            worst_b_resid = max(worst_b_resid, rel(err, resid) if resid > 0 else 0.0)
            # (d) round_closed.modules metrics (§6.9): residualNorm = ‖ΔR‖, deviation = ‖s·ΔR‖,
            # relativeDeviation = ‖s·ΔR‖ / ‖s·Σ w_i B_i A_i‖, with ΔR = Σ w_i B_i A_i − B̄Ā
            mean_prod = sum(B @ A for A, B in zip(As, Bs)) / len(As)
            dR = mean_prod - B_g @ A_g
            metrics = {x["module"]: x for x in self.s.closed[r]["modules"]}
            if mod in metrics:
                want = {"residualNorm": np.linalg.norm(dR), "deviation": abs(s) * np.linalg.norm(dR),
                        "relativeDeviation": np.linalg.norm(dR) / np.linalg.norm(mean_prod)}
                for field, value in want.items():
                    ed = abs(metrics[mod][field] - value) / value
                    worst_d = max(worst_d, ed)
                    if ed > self.s.args.tol_metrics:
                        raise CheckFailed(f"(d) round_closed({r}).modules[{mod}].{field} = {metrics[mod][field]:.6e}, computed here {value:.6e} (relative error {ed:.2e} > {self.s.args.tol_metrics:g})")
            if eb > self.s.args.tol_exact:
                raise CheckFailed(f"(b) {where}, module {mod}: base_new + s*B̄Ā differs from mean_i(base_old + s*B_i*A_i) by {err:.3e} (Frobenius), {eb:.3e} of the update norm {update:.3e} > {self.s.args.tol_exact:g}")
        e = self.s.errors.setdefault(r, {"a": 0.0, "b": 0.0, "b_resid": 0.0, "d": 0.0})
        e["a"], e["b"], e["b_resid"] = max(e["a"], worst_a), max(e["b"], worst_b), max(e["b_resid"], worst_b_resid)
        e["d"] = max(e["d"], worst_d)
        e.setdefault("checked_by", set()).add(self.i)
        if len(e["checked_by"]) == self.s.args.clients and r not in self.s.reported:
            self.s.reported.add(r)
            c = self.s.closed[r]
            print(f"round {r}: participants={c['participants']} aggregated={c.get('aggregated')} "
                  f"(a) mean error {e['a']:.2e} (tol {self.s.args.tol_mean:g}) "
                  f"(b) exactness error {e['b']:.2e} of update norm (tol {self.s.args.tol_exact:g}), {e['b_resid']:.2e} of residual norm "
                  f"(d) deviation metrics error {e['d']:.2e} (tol {self.s.args.tol_metrics:g}) "
                  f"[{self.s.args.clients} clients, revision {self.revision}, residuals {'+'.join(sorted(self.s.forms.get(self.revision, ()))) or 'none'}]", flush=True)

    # --- one connection -------------------------------------------------------------------
    async def run(self):
        a = self.s.args
        async with websockets.connect(a.url, max_size=MAX_FRAME_BYTES, compression=None, open_timeout=20,
                                      close_timeout=5) as ws:
            self.phase = "handshaking"
            self.last_heard = time.monotonic()
            hello = {
                "protocolMajor": PROTOCOL_MAJOR, "protocolMinor": PROTOCOL_MINOR, "token": a.token,
                "clientName": self.name, "clientId": self.client_id, "device": "cpu",
                "baseModelHash": self.s.model_hash, "baseRevision": 0,
                "capabilities": {"uplinkDtypes": ["float32"], "factoredResidual": not a.dense,
                                 "modelTransfer": False, "maxFrameBytes": MAX_FRAME_BYTES},
            }
            await self.send(ws, "hello", hello)
            self.phase = "handshaking"
            heartbeat = asyncio.ensure_future(self.heartbeat(ws))
            try:
                await self.receive_loop(ws)
            finally:
                heartbeat.cancel()
            self.log(f"closed with code {ws.close_code}")
            if ws.close_code not in (1000, None):
                raise ProtocolError("E_INTERNAL", f"coordinator closed with {ws.close_code} after federation_done (expected 1000)")

    async def heartbeat(self, ws):
        """§7.4: send something at least every heartbeatMs (a ping when idle). Liveness is the
        transport's (WebSocket pings, answered by the library); receivers allow gaps of up to
        3 x heartbeatMs, so silence is only reported, the overall --timeout ends a stuck run."""
        while True:
            hb = self.limits["heartbeatMs"] / 1000 if self.limits else 1.0
            await asyncio.sleep(min(hb / 4, 1.0))
            if not self.limits or self.phase in ("closed", "done", "handshaking", "connecting"):
                continue
            now = time.monotonic()
            if now - self.last_heard > 3 * hb and not self.silence_reported:
                self.silence_reported = True
                print(f"[{self.name}] note: nothing heard from the coordinator for {now - self.last_heard:.1f}s (> 3 x heartbeatMs)", file=sys.stderr)
            if now - self.last_sent >= hb / 2:
                self.nonce = (self.nonce + 1) % 4294967296
                self.pings.add(self.nonce)
                await self.send(ws, "ping", {"nonce": self.nonce, "sentAt": int(time.time() * 1000)})

    async def receive_loop(self, ws):
        a = self.s.args
        async for message in ws:
            self.last_heard = time.monotonic()
            self.silence_reported = False
            if isinstance(message, str):  # §1: a text message is a violation
                await ws.close(1003)
                raise ProtocolError("E_MALFORMED", "received a WebSocket text message")
            try:
                method, params, tensors = decode_frame(message)
                if method not in SENDER:
                    raise ProtocolError("E_UNKNOWN_METHOD", method)
                if SENDER[method] == "client":
                    raise ProtocolError("E_DIRECTION", f"coordinator sent {method}")
                minor = self.s.minor if self.s.minor is not None else PROTOCOL_MINOR
                validate_params(method, params, minor)
                if method == "welcome":
                    self.on_welcome(params)
                if method != "welcome" and self.s.layout is not None:
                    self.check_tensors(method, params, tensors)
                self.advance(method, params)
            except ProtocolError as e:
                await self.send(ws, "error", {"code": e.code, "message": e.message[:1024], "fatal": True})
                await ws.close(1008)
                raise
            self.log(f"<- {method} {json.dumps(params)[:160]}")
            if method == "reject":
                raise ProtocolError(params["code"], f"rejected: {params['message']}")
            elif method == "error":
                if params["fatal"]:
                    raise ProtocolError(params["code"], f"coordinator error: {params['message']}")
                print(f"[{self.name}] non-fatal error from coordinator: {params['code']} {params['message']}", file=sys.stderr)
            elif method == "ping":
                await self.send(ws, "pong", {"nonce": params["nonce"]})
            elif method == "pong":
                if params["nonce"] not in self.pings:
                    raise ProtocolError("E_SCHEMA", f"pong for nonce {params['nonce']} that was never sent")
                self.pings.discard(params["nonce"])
            elif method == "round_start":
                await self.on_round_start(ws, params, tensors)
            elif method == "update_ack":
                self.acked.add(params["round"])
            elif method == "update_rejected":
                raise CheckFailed(f"round {params['round']}: update rejected: {params['code']} {params['reason']}")
            elif method == "round_closed":
                self.on_round_closed(params)
            elif method == "federation_done":
                self.on_done(params, tensors)
        if self.phase != "done":
            raise ProtocolError("E_INTERNAL", f"connection closed ({ws.close_code} {ws.close_reason!r}) in phase {self.phase}, before federation_done")

    def on_welcome(self, p):
        if p["protocolMinor"] > PROTOCOL_MINOR:  # §12: negotiated = min(client's, coordinator's)
            raise ProtocolError("E_VERSION", f"welcome negotiated minor {p['protocolMinor']} > ours {PROTOCOL_MINOR}")
        c = p["config"]
        if ("localSteps" in c) == ("localEpochs" in c):
            raise ProtocolError("E_SCHEMA", "exactly one of config.localSteps and config.localEpochs")
        mods = [m["module"] for m in c["layout"]]
        if len(set(mods)) != len(mods):
            raise ProtocolError("E_SCHEMA", "a module appears twice in config.layout")
        if c["uplinkDtype"] != "float32":
            raise ProtocolError("E_SCHEMA", f"uplinkDtype {c['uplinkDtype']} is not one we listed")
        if "baseModel" in p:
            if p["baseModel"]["hash"] != c["baseModelHash"]:
                raise ProtocolError("E_SCHEMA", "baseModel.hash differs from config.baseModelHash")
            if p["baseModel"]["files"] != self.s.manifest:
                raise CheckFailed(f"welcome.baseModel.files {p['baseModel']['files']} differ from the manifest computed per §8: {self.s.manifest}")
        if c["baseModelHash"] != self.s.model_hash:
            raise CheckFailed(f"config.baseModelHash {c['baseModelHash']} != the §8 hash computed here {self.s.model_hash}")
        if self.s.layout is None:
            self.s.minor, self.s.layout, self.s.config = p["protocolMinor"], c["layout"], c
            self.s.pristine, self.s.keys = load_base(self.s.args.model, c["layout"])
            if c["method"] != "fedex":
                raise CheckFailed(f"federation method is {c['method']}, this test needs fedex")
            if c["weighting"] != "uniform":
                raise CheckFailed("this test checks uniform weighting")
        elif (p["protocolMinor"], c) != (self.s.minor, self.s.config):
            raise CheckFailed("two connections got different federation configs")
        self.limits = p["limits"]
        self.base = {k: v.copy() for k, v in self.s.pristine.items()}
        self.revision = 0
        print(f"[{self.name}] welcomed: session {p['sessionId']}, minor {p['protocolMinor']}, {len(c['layout'])} modules, "
              f"rank {c['rank']}, alpha {c['alpha']}, {c['rounds']} rounds", flush=True)

    async def on_round_start(self, ws, p, tensors):
        r = p["round"]
        self.apply_base_update(p, tensors)
        g = self.read_global(tensors)
        last = max((x for x in self.s.closed if x < r and self.s.closed[x].get("aggregated", self.s.closed[x]["participants"] > 0)), default=None)
        if last is not None:
            self.verify_aggregate(last, g, f"round_start({r}) to {self.name}")
        # every connection must start round r from the same base and global adapter
        lin = self.linear_base()
        if r in self.s.round_base:
            for mod in lin:
                if not np.array_equal(lin[mod], self.s.round_base[r][mod]) or any(
                        not np.array_equal(x, y) for x, y in zip(g[mod], self.s.round_global[r][mod])):
                    raise CheckFailed(f"round {r}: {self.name} starts from a different base/global adapter for {mod} than another client")
        else:
            self.s.round_base[r] = {k: v.copy() for k, v in lin.items()}
            self.s.round_global[r] = g
        self.global_ = g
        # "train": global + seeded Gaussian perturbation, rounded to float32 (what travels)
        rng = np.random.default_rng([self.s.args.seed, self.i, r])
        upload, tensors_out = {}, []
        for m in self.s.layout:
            A, B = g[m["module"]]
            A2 = (A.astype(np.float64) + self.s.args.noise * rng.standard_normal(A.shape)).astype(np.float32)
            B2 = (B.astype(np.float64) + self.s.args.noise * rng.standard_normal(B.shape)).astype(np.float32)
            upload[m["module"]] = (A2, B2)
            tensors_out += [(m["module"] + ".lora_A", A2), (m["module"] + ".lora_B", B2)]
        self.s.uploads.setdefault(r, {})[self.i] = upload
        params = {"round": r, "examples": 8, "trainLoss": 1.0 + 0.25 * self.i, "steps": 1, "durationMs": 1}
        await self.send(ws, "client_update", params, tensors_out)
        self.advance_sent_update(r)
        self.rounds_uploaded += 1
        self.log(f"-> client_update({r})")

    def advance_sent_update(self, r):
        if self.phase != "training" or r != self.round:
            raise AssertionError(f"client_update({r}) in phase {self.phase}")
        self.phase = "uploaded"

    def on_round_closed(self, p):
        r = p["round"]
        k = self.s.args.clients
        # (c)
        if p.get("aggregated") is not True:
            raise CheckFailed(f"(c) round_closed({r}): aggregated is {p.get('aggregated', '<absent>')}, expected true")
        if p["participants"] != k:
            raise CheckFailed(f"(c) round_closed({r}): participants {p['participants']}, expected {k}")
        if p["dropped"] != 0:
            raise CheckFailed(f"(c) round_closed({r}): dropped {p['dropped']}, expected 0")
        if r not in self.acked:
            raise CheckFailed(f"round_closed({r}) before update_ack({r}) for {self.name}")
        mods = [m["module"] for m in p["modules"]]
        if sorted(mods) != sorted(m["module"] for m in self.s.layout):
            raise CheckFailed(f"round_closed({r}).modules lists {mods}, not the layout")
        if r in self.s.closed:
            if self.s.closed[r] != p:
                raise CheckFailed(f"round_closed({r}) differs between clients")
        else:
            self.s.closed[r] = p

    def on_done(self, p, tensors):
        rounds = self.s.config["rounds"]
        if p["reason"] != "completed" or p["roundsCompleted"] != rounds:
            raise CheckFailed(f"federation_done: reason {p['reason']}, roundsCompleted {p['roundsCompleted']} (expected completed, {rounds}): {p.get('message', '')}")
        self.apply_base_update(p, tensors)
        g = self.read_global(tensors)
        self.verify_aggregate(rounds, g, f"federation_done to {self.name}")
        self.s.final[self.i] = (self.base, g)
        self.s.final_revision = self.revision


# ---------------------------------------------------------------------------------------------


def write_final(shared, out):
    """Final base (float64, storage orientation) and global adapter, as raw little-endian float64
    files + index.json, for the test to compare with the host's final model and adapter."""
    os.makedirs(out, exist_ok=True)
    base, g = shared.final[0]
    for i, (b, gg) in shared.final.items():
        for mod in b:
            if not np.array_equal(b[mod], base[mod]) or not all(np.array_equal(x, y) for x, y in zip(gg[mod], g[mod])):
                raise CheckFailed(f"client {i} ends with a different base or adapter for {mod} than client 0")
    index = {"revision": shared.final_revision, "modules": []}
    for n, m in enumerate(shared.layout):
        mod = m["module"]
        entry = {"module": mod, "key": shared.keys[mod], "fanInFanOut": m["fanInFanOut"], "rank": m["rank"],
                 "scaling": scaling(shared.config, m["rank"])}
        for kind, arr in (("base", base[mod]), ("lora_A", g[mod][0]), ("lora_B", g[mod][1])):
            fname = f"{n}.{kind}.f64"
            np.ascontiguousarray(arr, dtype="<f8").tofile(os.path.join(out, fname))
            entry[kind] = {"file": fname, "shape": list(arr.shape)}
        entry["pristineNorm"] = float(np.linalg.norm(shared.pristine[mod]))
        entry["changeNorm"] = float(np.linalg.norm(base[mod] - shared.pristine[mod]))
        index["modules"].append(entry)
    with open(os.path.join(out, "index.json"), "w", encoding="utf-8") as f:
        json.dump(index, f, indent=1)


def self_test():
    """Encode the §3.3 example and compare byte by byte with the document's hex dump."""
    frame = encode_frame("client_update", {"round": 1, "examples": 32, "trainLoss": 1.5},
                         [("h.0.q.lora_A", np.array([[1, -2]], np.float32)), ("h.0.q.lora_B", np.array([[0.5], [0.25]], np.float32))])
    doc_hex = (
        "46454458010000 00fc0000007b226d65"
        "74686f64223a22636c69656e745f7570"
        "64617465222c22706172616d73223a7b"
        "22726f756e64223a312c226578616d70"
        "6c6573223a33322c22747261696e4c6f"
        "7373223a312e357d2c2274656e736f72"
        "73223a5b7b226e616d65223a22682e30"
        "2e712e6c6f72615f41222c2264747970"
        "65223a22666c6f61743332222c227368"
        "617065223a5b312c325d2c226f666673"
        "6574223a302c226c656e677468223a38"
        "7d2c7b226e616d65223a22682e302e71"
        "2e6c6f72615f42222c22647479706522"
        "3a22666c6f61743332222c2273686170"
        "65223a5b322c315d2c226f6666736574"
        "223a382c226c656e677468223a387d5d"
        "7d20202020202020000080 3f000000c0"
        "0000003f0000803e").replace(" ", "")
    expected = bytes.fromhex(doc_hex)
    if frame != expected:
        raise SystemExit(f"self-test: encoder output ({len(frame)} bytes) differs from §3.3 ({len(expected)} bytes)")
    method, params, tensors = decode_frame(frame)
    validate_params(method, params, PROTOCOL_MINOR)
    assert tensors["h.0.q.lora_B"][1].tolist() == [[0.5], [0.25]]
    print("self-test: §3.3 example frame reproduced byte for byte (280 bytes) and decoded")


async def main_async(args):
    manifest = model_manifest(args.model)
    shared = Shared(args, manifest, manifest_hash(manifest))
    print(f"model {args.model}: §8 hash {shared.model_hash} over {[f['name'] for f in manifest]}", flush=True)
    clients = [Client(i, shared) for i in range(args.clients)]
    tasks = [asyncio.ensure_future(c.run()) for c in clients]
    try:
        done, pending = await asyncio.wait(tasks, timeout=args.timeout, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if t.exception() is not None:
                raise t.exception()
        if pending:
            raise ProtocolError("E_TIMEOUT", f"federation not done after {args.timeout}s ({len(pending)} clients still running)")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    rounds = shared.config["rounds"]
    if sorted(shared.reported) != list(range(1, rounds + 1)):
        raise CheckFailed(f"checked rounds {sorted(shared.reported)}, expected 1..{rounds}")
    if args.rounds is not None and rounds != args.rounds:
        raise CheckFailed(f"federation had {rounds} rounds, expected {args.rounds}")
    if args.out:
        write_final(shared, args.out)
    print(f"OK: {rounds} rounds, {args.clients} clients; max (a) {max(e['a'] for e in shared.errors.values()):.2e}, "
          f"max (b) {max(e['b'] for e in shared.errors.values()):.2e}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", nargs="?")
    ap.add_argument("--token")
    ap.add_argument("--model", help="base model folder (the same files as the coordinator's)")
    ap.add_argument("--clients", type=int, default=2, help="K concurrent clients (default 2)")
    ap.add_argument("--rounds", type=int, help="expected number of rounds (checked against welcome)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--noise", type=float, default=0.01, help="std of the Gaussian 'training' perturbation")
    ap.add_argument("--tol-mean", type=float, default=1e-6, help="(a) relative tolerance of the global adapter")
    ap.add_argument("--tol-exact", type=float, default=1e-5, help="(b) relative tolerance of FedEx exactness")
    ap.add_argument("--tol-metrics", type=float, default=1e-4, help="(d) relative tolerance of round_closed's deviation metrics")
    ap.add_argument("--dense", action="store_true", help="declare factoredResidual: false (dense residuals)")
    ap.add_argument("--out", help="write the final base and adapter (float64) here")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--self-test", action="store_true", help="only check the codec against §3.3")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return 0
    if not (args.url and args.token and args.model):
        ap.error("URL, --token and --model are required")
    try:
        self_test()
        asyncio.run(main_async(args))
        return 0
    except CheckFailed as e:
        print(f"CHECK FAILED: {e}", file=sys.stderr, flush=True)
        return 1
    except ProtocolError as e:
        print(f"PROTOCOL FAILURE: {e}", file=sys.stderr, flush=True)
        return 2
    except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError) as e:
        print(f"CONNECTION FAILURE: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())

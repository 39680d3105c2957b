"""What the PyTorch references of the trainer benchmarks share (bench/torch/train.py, train_llama.py):
reading a safetensors file without the safetensors package, and the timed training loop with its
JSON result."""
import contextlib
import json
import resource
import struct
import time

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def read_safetensors(path, dtype=None, device="cpu"):
    """Every tensor of a safetensors file, by name, one tensor at a time (peak memory: the weights
    once). dtype None: F32 tensors only, as stored; else each converted to `dtype` on `device`."""
    out = {}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            allowed = ("F32",) if dtype is None else tuple(DTYPES)
            if info["dtype"] not in allowed:
                raise ValueError(f"{name}: dtype {info['dtype']} is not one of {', '.join(allowed)}")
            begin, end = info["data_offsets"]
            buf = bytearray(end - begin)
            f.seek(8 + n + begin)
            f.readinto(buf)
            t = torch.frombuffer(buf, dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
            out[name] = t if dtype is None else t.to(device=device, dtype=dtype)
    return out


def read_rows(args, device="cpu"):
    """The first batch_size rows of seq_len ids of the pre-tokenized JSONL file args["data"]."""
    rows = []
    with open(args["data"]) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line)["input_ids"][: args["seq_len"]])
    ids = torch.tensor(rows[: args["batch_size"]], dtype=torch.long, device=device)
    if ids.shape != (args["batch_size"], args["seq_len"]):
        raise ValueError(f"data: need {args['batch_size']} rows of {args['seq_len']} tokens, got {tuple(ids.shape)}")
    return ids


def train_and_report(model, ids, args, device="cpu", autocast_dtype=None, extra=None):
    """AdamW on the model's trainable parameters for warmup + steps steps (each timed, the GPU
    synchronised around it), then prints one JSON object of results, with what `extra()` (called
    after training) adds."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args["lr"], weight_decay=0.0)
    model.train()

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    losses, times = [], []
    for _ in range(args["warmup"] + args["steps"]):
        sync()
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=autocast_dtype) if autocast_dtype is not None else contextlib.nullcontext():
            loss = model(ids)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        sync()
        times.append((time.perf_counter() - t) * 1e3)
    step_ms = times[args["warmup"]:]
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "step_ms": step_ms,
        "warmup_ms": times[: args["warmup"]],
        "median_ms": median(step_ms),
        "min_ms": min(step_ms),
        "tokens_per_step": args["batch_size"] * args["seq_len"],
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "modules": model.adapted,
        "trainable": sum(p.numel() for p in params),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **(extra() if extra is not None else {}),
    }))

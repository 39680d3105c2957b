"""PyTorch reference timings for the aggregation benchmark (run by bench/aggregation.ts).

Reads one JSON object of arguments from argv[1] and prints one JSON object of results:
per case the median and min milliseconds of
  - fused:  W0.addmm_(P, Q, alpha=s)             (factored residual, one fused product)
  - stored: the module stored as bf16: W32 = W.float(); W32.addmm_(P, Q); W.copy_(W32) (round to
            nearest even), and the same with the rounding report fedex computes (max |error|,
            Σ error², Σ x², max relative error, values flushed to zero)
  - dense:  paper-style, each B_i @ A_i formed densely, then W0 += s * (sum - Bbar @ Abar)
  - strategies: each strategy's round for the module, as bench/aggregationCase.ts `strategy` runs it:
            fedex (= fused), fedit (Abar, Bbar), ffa (Bbar; A shared), fedsb (Rbar: R is r x r), flora (Abar, Bbar for the
            metrics, then W0.addmm_([w_i B_i], [A_i]) and a fresh A); with "strategies_only" the
            other cases are skipped.
Data are seeded normal values; only timings are compared, never results.
"""
import json
import resource
import sys
import time

import torch


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def bench(fn, reps):
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return {"median_ms": median(ts), "min_ms": min(ts), "reps": reps}


def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(int(args.get("threads", 2)))
    torch.manual_seed(0)
    out_f, in_f, k, r, reps = args["out"], args["in"], args["k"], args["r"], args["reps"]
    s = 2.0
    w0 = torch.randn(out_f, in_f)
    a = [torch.randn(r, in_f) * 0.01 for _ in range(k)]
    b = [torch.randn(out_f, r) * 0.01 for _ in range(k)]
    wts = [1.0 / k] * k

    def fused():
        a_bar = sum(w * x for w, x in zip(wts, a))
        p = torch.cat([w * x for w, x in zip(wts, b)], dim=1)
        q = torch.cat([x - a_bar for x in a], dim=0)
        w0.addmm_(p, q, alpha=s)

    w16 = torch.randn(out_f, in_f).mul_(0.02).bfloat16()
    tiny = torch.tensor(1.401298464324817e-45)

    def stored():
        a_bar = sum(w * x for w, x in zip(wts, a))
        p = torch.cat([w * x for w, x in zip(wts, b)], dim=1)
        q = torch.cat([x - a_bar for x in a], dim=0)
        w32 = w16.float()
        w32.addmm_(p, q, alpha=s)
        w16.copy_(w32)
        return w32

    def stored_measured():
        w32 = stored()
        d = w32 - w16.float()
        ad = d.abs()
        rel = ad / torch.maximum(w32.abs(), tiny)
        return (ad.max().item(), d.square().sum().item(), w32.square().sum().item(), rel.max().item(), rel.floor().sum().item())

    def dense():
        a_bar = sum(w * x for w, x in zip(wts, a))
        b_bar = sum(w * x for w, x in zip(wts, b))
        ideal = sum(w * (y @ x) for w, x, y in zip(wts, a, b))
        w0.add_(ideal - b_bar @ a_bar, alpha=s)

    def fedit():
        return sum(w * x for w, x in zip(wts, a)), sum(w * x for w, x in zip(wts, b))

    def ffa():
        return sum(w * x for w, x in zip(wts, b))

    gen = torch.Generator().manual_seed(1)
    bound = 1.0 / in_f ** 0.5

    def flora():
        fedit()
        p = torch.cat([w * x for w, x in zip(wts, b)], dim=1)
        q = torch.cat(a, dim=0)
        w0.addmm_(p, q, alpha=s)
        return torch.empty(r, in_f).uniform_(-bound, bound, generator=gen)

    rs = [torch.randn(r, r, generator=gen) * 0.1 for _ in range(k)]

    def fedsb():
        return sum(w * x for w, x in zip(wts, rs))

    strategies = {"fedex": bench(fused, reps), "fedit": bench(fedit, reps), "ffa": bench(ffa, reps), "flora": bench(flora, reps), "fedsb": bench(fedsb, reps)}
    if args.get("strategies_only"):
        print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "strategies": strategies,
                          "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return

    result = {
        "torch": torch.__version__,
        "strategies": strategies,
        "threads": torch.get_num_threads(),
        "fused": bench(fused, reps),
        "dense": bench(dense, max(1, reps // 3)),
        "stored": bench(stored, reps),
        "stored_measured": bench(stored_measured, reps),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

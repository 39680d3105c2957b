"""Dense-SVD reference of the export benchmark (run by bench/export.ts, one process per module).

argv[1] is one JSON object: {"p": file, "q": file, "scales": file, "out": n, "in": n, "m": n,
"threads": n, "top": n, "dtypes": ["float32", "float64"], "lib": "torch" | "numpy"}. The files are
raw little-endian arrays written by bench/exportCase.ts: the stacked factors P (out × m float32,
row-major, unscaled), Q (m × in float32, row-major) and the scale of each of the m columns (float64),
so that ΔW = (P·diag(scales))·Q exactly as core/lowRank.ts stacks it.

Per dtype, with the RSS high-water mark reset before each where Linux allows: ΔW is formed densely
in that dtype (float64: the float32 factors widened, so the products are those lowRank.ts sums;
float32: P·diag(s) rounded to float32, one sgemm), then ONE call to torch.linalg.svd(ΔW,
full_matrices=False) (or numpy.linalg.svd, the same), LAPACK gesdd with U, S and Vᵀ, is timed
alone. Prints one JSON object: per dtype the SVD's seconds, the seconds to form ΔW (not part of the
comparison), the RSS the two added at their peak (ΔW + gesdd's workspace + U, S, Vᵀ), the top
singular values and the numerical rank at the threshold lowRank.ts uses (σ_i > σ_1 · max(out, in, m)
· 2⁻⁵²; float32: 2⁻²³).
"""
import json
import os
import resource
import sys
import time


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib():
    """The RSS high-water mark (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak():
    """Resets the RSS high-water mark to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def lapack_library():
    """The BLAS/LAPACK shared object this process mapped (which LAPACK ran gesdd)."""
    seen = []
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = os.path.basename(path)
            if any(k in name for k in ("lapack", "openblas", "mkl", "blis")) and path not in seen:
                seen.append(path)
    return seen


def main():
    args = json.loads(sys.argv[1])
    import numpy as np

    out_f, in_f, m = args["out"], args["in"], args["m"]
    p32 = np.fromfile(args["p"], dtype="<f4").reshape(out_f, m)
    q32 = np.fromfile(args["q"], dtype="<f4").reshape(m, in_f)
    scales = np.fromfile(args["scales"], dtype="<f8")
    lib = args.get("lib", "torch")
    result = {"lib": lib, "numpy": np.__version__, "runs": {}}
    if lib == "torch":
        import torch

        torch.set_num_threads(int(args.get("threads", 2)))
        result["torch"] = torch.__version__
        result["threads"] = torch.get_num_threads()

        def form(dtype):
            if dtype == "float64":
                p = torch.from_numpy(p32).double() * torch.from_numpy(scales)
                return p @ torch.from_numpy(q32).double()
            p = (torch.from_numpy(p32).double() * torch.from_numpy(scales)).float()
            return p @ torch.from_numpy(q32)

        def svd(d):
            u, s, vt = torch.linalg.svd(d, full_matrices=False)
            return u, s.double().numpy(), vt

        svd(form("float64")[:64, :64].clone())  # warm-up: loads LAPACK, starts its threads
    else:
        def form(dtype):
            if dtype == "float64":
                return (p32.astype(np.float64) * scales) @ q32.astype(np.float64)
            return (p32.astype(np.float64) * scales).astype(np.float32) @ q32

        def svd(d):
            u, s, vt = np.linalg.svd(d, full_matrices=False)
            return u, s.astype(np.float64), vt

        svd(form("float64")[:64, :64].copy())
    result["lapack"] = lapack_library()
    top = int(args.get("top", 8))
    for dtype in args.get("dtypes", ["float32", "float64"]):
        reset = reset_peak()
        base = rss_mib()
        t = time.perf_counter()
        d = form(dtype)
        form_s = time.perf_counter() - t
        t = time.perf_counter()
        u, s, vt = svd(d)
        svd_s = time.perf_counter() - t
        eps = 2.0**-52 if dtype == "float64" else 2.0**-23
        floor = (s[0] if len(s) else 0.0) * max(out_f, in_f, m) * eps
        result["runs"][dtype] = {
            "svd_s": svd_s,
            "form_s": form_s,
            "peak_rss_mib": max(0.0, peak_mib() - base),
            "peak_reset": reset,
            "top": [float(x) for x in s[:top]],
            "rank": int((s > floor).sum()),
        }
        del d, u, s, vt
    print(json.dumps(result))


main()

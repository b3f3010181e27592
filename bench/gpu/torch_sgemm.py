#!/usr/bin/env python3
"""fp32 matmul on the same card through PyTorch (cuBLAS SGEMM), TF32 disabled: the figure the WebGPU
matmul is compared with. Prints one JSON line like bench/gpu/gpt2.mjs; exits 0 with an "error" field
where torch or CUDA is missing, so that the rest of a run's figures still come back."""
import json
import sys
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
try:
    import torch
except ImportError as e:  # no PyTorch on this machine
    print(json.dumps({"bench": "matmul", "shape": [n, n, n], "impl": "torch-cublas-sgemm", "error": str(e)}))
    sys.exit(0)
if not torch.cuda.is_available():
    print(json.dumps({"bench": "matmul", "shape": [n, n, n], "impl": "torch-cublas-sgemm", "error": "CUDA is not available"}))
    sys.exit(0)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
a = torch.rand(n, n, device="cuda", dtype=torch.float32) - 0.5
b = torch.rand(n, n, device="cuda", dtype=torch.float32) - 0.5
for _ in range(3):
    torch.mm(a, b)
torch.cuda.synchronize()
times = []
reps = 10
for _ in range(5):
    t = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    torch.cuda.synchronize()
    times.append((time.perf_counter() - t) / reps * 1000)
ms = sorted(times)[len(times) // 2]
print(json.dumps({"bench": "matmul", "shape": [n, n, n], "impl": "torch-cublas-sgemm", "adapter": torch.cuda.get_device_name(0),
                  "tf32": False, "ms_median": round(ms, 4), "gflops": round(2 * n ** 3 / (ms * 1e6), 1)}))

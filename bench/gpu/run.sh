#!/usr/bin/env bash
# The real-GPU figures of the performance work, in one run (see README, "On a real GPU"):
#   1. npm run bench's matmul (1024–4096, with the TF.js and jax-js peers), MLP and GPT benches;
#   2. GPT-2 124M fine-tuning steps (B 4, T 256) with tokens/s and MFU;
#   3. PyTorch's cuBLAS SGEMM at 4096³ with TF32 disabled, on the same card.
# Output: JSON lines on stdout, and the bench report in ${OUT:-bench/results}.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-bench/results}
node bench/run.mjs matmul mlp gpt --sizes=1024,2048,4096 --iters=5 --steps=10 --out="$out"
node bench/gpu/gpt2.mjs --steps=5
python3 bench/gpu/torch_sgemm.py 4096 || echo '{"impl":"torch-cublas-sgemm","error":"python3 is not available"}'

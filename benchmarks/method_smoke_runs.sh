#!/bin/bash
# One small run of each method on a checkout, to compare two versions of the code:
#   benchmarks/method_smoke_runs.sh <checkout> <output dir>
# (baseline on all of Banking77 test; LUMI, ClusterLLM and co-training on the 200-text fixture)
# The restructuring (#21) was checked with a checkout of 6a0c4c0 against one of ef60e7b, with
# REDUCE='reduce.method=none' and with REDUCE='reduce.method=none audit.enabled=false':
# benchmarks/compare_runs.py -> benchmarks/results/redesign_before_after.json (every assignment identical).
set -eu
cd "$1"
export PYTHONPATH="$1/libs"
F="$1/tests/fixtures/banking77_small.csv"
OUT="$2"
REDUCE="${REDUCE:-reduce.method=none}"
mkdir -p "$OUT"
python cluster_jobs/baseline.py --config ray_configs/local.yaml $REDUCE run.dir="$OUT/baseline" > "$OUT/baseline.log" 2>&1
python cluster_jobs/lumi.py --config ray_configs/lumi_local.yaml $REDUCE corpus.path="$F" clustering.n_clusters=10 \
  run.dir="$OUT/lumi" > "$OUT/lumi.log" 2>&1
python cluster_jobs/clusterllm.py --config ray_configs/clusterllm_local.yaml $REDUCE corpus.path="$F" clustering.n_clusters=10 \
  clusterllm.triplets.budget=64 clusterllm.triplets.coarse_k=20 clusterllm.training.max_steps=8 \
  clusterllm.training.batch_size=8 run.dir="$OUT/clusterllm" > "$OUT/clusterllm.log" 2>&1
python cluster_jobs/cotrain.py --config ray_configs/cotrain_local.yaml $REDUCE corpus.path="$F" corpus.limit=60 \
  clustering.n_clusters=10 cotrain.iterations=1 cotrain.dpo.max_steps=2 cotrain.embedder.max_steps=5 \
  cotrain.embedder.batch_size=16 cotrain.embedder.dec_clusters=10 run.dir="$OUT/cotrain" > "$OUT/cotrain.log" 2>&1

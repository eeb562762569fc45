#!/usr/bin/env bash
# benchmarks/gpu_acceptance.py on a lent GPU machine that is reached through calls of at most
# 10 minutes and has no package index (the offline bundle: ../shared/offline_bundle/make_bundle.sh).
#
#   calls 1, 2:  mkdir -p /tmp/stage && cp .bundle/pN/* /tmp/stage/            (carry .bundle/pN)
#   call 3:      bash benchmarks/gpu_lease.sh start 540     (carry .bundle/p3; STEPS="baseline cotrain" to choose,
#                ACC_ARGS="--cap cotrain=300" for more of gpu_acceptance.py's options)
#   call 4..:    bash benchmarks/gpu_lease.sh wait 300      (while it says STILL RUNNING)
#
# `start` joins the parts in /tmp/stage, unpacks them, copies the checkout to /tmp/acc (beside the
# bundle's shared data, as ../shared) and starts the script detached (setsid: it outlives the
# call); `start` and `wait` follow it until it ends or LIMIT seconds pass, then copy its JSON, its
# log and the jobs' logs and manifests to $OUT. The calls must follow each other within the
# machine's idle time (30 s), or /tmp is gone.
MODE=${1:-start}; LIMIT=${2:-540}; T0=$(date +%s); W=/tmp/acc; ROOT=/tmp/llmclust_bundle
if [ "$MODE" = start ]; then
  cp .bundle/p3/* /tmp/stage/ && ls /tmp/stage
  (cd /tmp/stage && timeout 150 bash unpack.sh /tmp/stage) > "$OUT/unpack.log" 2>&1 || { tail -30 "$OUT/unpack.log"; exit 1; }
  echo "unpacked in $(( $(date +%s) - T0 )) s"
  mkdir -p $W/llmclust && tar -cf - --exclude=./.bundle . | tar -xf - -C $W/llmclust && ln -sfn $ROOT/shared $W/shared
  nvidia-smi -L
  cd $W/llmclust || exit 1
  export PYTHONPATH=$ROOT/site:$W/llmclust/libs HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 \
    LLMCLUST_CACHE=/tmp/llmclust_cache PATH=$ROOT/site/bin:$PATH
  setsid nohup python3 benchmarks/gpu_acceptance.py --steps ${STEPS:-baseline cotrain clusterllm lumi embed} ${ACC_ARGS:-} \
    --work-dir $W/runs --out $W/gpu_acceptance.json > $W/acc.log 2>&1 < /dev/null &
  echo $! > $W/pid
fi
pid=$(cat $W/pid); seen=0
while kill -0 "$pid" 2>/dev/null && [ $(( $(date +%s) - T0 )) -lt "$LIMIT" ]; do
  sleep 5; n=$(wc -l < $W/acc.log); [ "$n" -gt "$seen" ] && sed -n "$((seen+1)),${n}p" $W/acc.log | grep -E "finished=|Error|error" ; seen=$n
done
kill -0 "$pid" 2>/dev/null && echo "STILL RUNNING after $(( $(date +%s) - T0 )) s" || echo "ENDED"
cp $W/acc.log "$OUT/" ; [ -f $W/gpu_acceptance.json ] && cp $W/gpu_acceptance.json "$OUT/"
(cd $W && find runs -name '*.log' -o -name '*.json' | tar -czf "$OUT/runs_logs.tgz" -T - 2>/dev/null)  # logs, manifests: small
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv
tail -5 $W/acc.log

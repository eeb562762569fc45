"""LLM throughput of the transformers backend (no Ray): prompts/s and generated tokens/s.

    python benchmarks/llm_throughput.py                                   # CPU, writes llm_throughput_cpu.json
    python benchmarks/llm_throughput.py --device cuda --batch-sizes 64 256 1024 --prompts 2048
    python benchmarks/llm_throughput.py --triplets                        # -> llm_throughput_triplets_cpu.json

Prompts are LUMI label prompts over Banking77 test texts; timing starts after one warm-up batch.
With ``--triplets``: ClusterLLM triplet questions answered by generating "Choice 1/2" (the
worked-examples prompt, one order, as the judge asked before) against log-probability
answers in both orders (each formulation of :mod:`llmclust.methods.clusterllm.questions`),
in triplets answered per second.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from llmclust.llm import LLMConfig, SamplingParams, make_backend
from llmclust.llm.prompts import context_block
from llmclust.methods.lumi.prompts import LUMI_PROMPTS

from common import RESULTS, TEST_CSV  # noqa: E402  (puts libs/ on the path)
DATA = TEST_CSV


def prompts(count: int, context: int, data: Path) -> list:
    texts = [row["text"] for row in csv.DictReader(data.open())]
    return [LUMI_PROMPTS.render("lumi_label", "intent: banking customer purpose", text=texts[i % len(texts)],
                   context=context_block(texts[i + 1 : i + 1 + context], 100)) for i in range(count)]


def triplet_rates(backend, count: int, batch: int, data: Path) -> list[dict]:
    """Triplets/s: generated answers vs log-probability answers (both orders) per formulation."""
    from llmclust.methods.clusterllm.config import TRIPLET_QUESTIONS
    from llmclust.methods.clusterllm.prompts import triplet_chat
    from llmclust.methods.clusterllm.questions import triplet_views

    texts = [row["text"] for row in csv.DictReader(data.open())]
    task = "intent: what the banking customer wants"
    triplets = [(texts[i], texts[(i + 7) % len(texts)], texts[(i + 131) % len(texts)]) for i in range(count)]
    backend.cfg.batch_size = batch
    out = []

    def timed(name, run, sequences):
        run(batch)  # warm-up
        t0 = time.time()
        run(count)
        seconds = time.time() - t0
        out.append({"answer_by": name, "triplets": count, "sequences_per_triplet": sequences,
                    "seconds": round(seconds, 2), "triplets_per_s": round(count / seconds, 2)})
        print(out[-1])

    timed("generated text (one order)", lambda n: backend.generate(
        [triplet_chat(task, *t) for t in triplets[:n]], SamplingParams(max_tokens=6)), 1)
    for question in TRIPLET_QUESTIONS:
        def score(n, question=question):
            views = [triplet_views(question, task, *t) for t in triplets[:n]]
            chats = [c for v in views for view in v for c in view.chats]
            backend.generate(chats, SamplingParams(choices=views[0][0].choices))

        per = sum(len(v.chats) for v in triplet_views(question, task, "a", "b", "c"))
        timed(f"log-probabilities, {question} (both orders)", score, per)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--prompts", type=int, default=128, help="prompts per batch size")
    parser.add_argument("--max-tokens", type=int, default=12)
    parser.add_argument("--context", type=int, default=0, help="neighbours shown in each prompt (LUMI's k)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--triplets", action="store_true", help="time triplet answers: generated vs log-probabilities")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/llm_throughput[_triplets]_<device>.json")
    args = parser.parse_args(argv)

    backend = make_backend(LLMConfig(model=args.model, device=args.device, batch_size=max(args.batch_sizes)))
    if args.triplets:
        import torch

        runs = triplet_rates(backend, args.prompts, args.batch_sizes[0], args.data)
        out = args.out or RESULTS / f"llm_throughput_triplets_{args.device}.json"
        out.write_text(json.dumps({"device": args.device, "cpu_threads": torch.get_num_threads(), "model": args.model,
                                   "batch_size": args.batch_sizes[0], "runs": runs}, indent=2))
        print(f"wrote {out}")
        return
    chats = prompts(args.prompts, args.context, args.data)
    params = SamplingParams(max_tokens=args.max_tokens)
    prompt_chars = sum(len(backend.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)) for c in chats)
    runs = []
    for batch in args.batch_sizes:
        backend.cfg.batch_size = batch
        backend.generate(chats[:batch], params)  # warm-up: allocation, kernels
        backend.stats.update(prompts=0, generated_tokens=0, seconds=0.0)
        t0 = time.time()
        backend.generate(chats, params)
        seconds = time.time() - t0
        runs.append({"batch_size": batch, "prompts": len(chats), "seconds": round(seconds, 2),
                     "prompts_per_s": round(len(chats) / seconds, 2),
                     "generated_tokens": backend.stats["generated_tokens"],
                     "generated_tokens_per_s": round(backend.stats["generated_tokens"] / seconds, 1)})
        print(runs[-1])
    import torch

    result = {"device": args.device, "device_name": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
              "cpu_threads": torch.get_num_threads(), "model": args.model, "dtype": str(backend.model.dtype),
              "max_tokens": args.max_tokens, "context_neighbours": args.context,
              "prompt_chars_mean": round(prompt_chars / len(chats), 1), "runs": runs,
              "note": "timed after a warm-up batch; greedy decoding; transformers generate with left padding"}
    out = args.out or RESULTS / f"llm_throughput_{args.device}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Continue a Savant masked-LM run across processes and machines with PyTorch DDP.

Savant trains data-parallel on the devices of one machine (`savant pretrain --devices ...`);
burn 0.22 has no cross-node data parallel. Savant's outputs are plain Hugging Face folders, so a
run that outgrows one machine continues here: `OUT/model/` of `savant pretrain` is a
`BertForMaskedLM` folder that transformers loads without missing keys, and what this script
saves is again a folder Savant loads (`savant train --model`, `savant embed --model`).

One machine, 2 processes (CPU: gloo; GPUs: nccl, one process per GPU):

    torchrun --nproc_per_node 2 examples/pytorch_ddp/continue_mlm.py \
        --model runs/dapt/model --corpus corpus.jsonl --text text --steps 1000 -o runs/dapt-ddp

Several machines: the same command on each with `--nnodes N --node_rank R
--rdzv_backend c10d --rdzv_endpoint HOST:PORT`. DeepSpeed: wrap the same model and loop with
`deepspeed.initialize(model=model, optimizer=optim, config=...)` and launch with `deepspeed`;
the data and saving parts stay as they are.

Each rank reads every `world_size`-th window of the corpus, masks 15% of tokens as
`savant pretrain` does (transformers' DataCollatorForLanguageModeling, 80/10/10), and DDP
averages the gradients every step, so all ranks hold the same weights; rank 0 checks that
(a checksum all-gathered from every rank) and saves. `examples/pytorch_ddp/test.sh` runs it.
"""
import argparse
import csv
import gzip
import json
import os
import random

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from transformers import AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling


def texts(paths, field):
    for path in paths:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            if ".jsonl" in path:
                for line in f:
                    if line.strip():
                        yield json.loads(line)[field]
            else:
                delimiter = "\t" if ".tsv" in path else ","
                for row in csv.DictReader(f, delimiter=delimiter):
                    yield row[field]


def windows(tokenizer, paths, field, max_len):
    """Long documents become several windows of max_len tokens ([CLS] ... [SEP]), as in savant."""
    inner = max_len - 2
    for text in texts(paths, field):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        for start in range(0, max(len(ids), 1), inner):
            piece = ids[start : start + inner]
            if piece:
                yield [tokenizer.cls_token_id] + piece + [tokenizer.sep_token_id]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--corpus", required=True, nargs="+")
    p.add_argument("--text", default="text")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=8, help="windows per process per step")
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--mlm-prob", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args()

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu")
    torch.manual_seed(a.seed + rank)  # each rank its own masks

    tokenizer = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForMaskedLM.from_pretrained(a.model).to(device)
    model = DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=a.mlm_prob)
    optim = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)

    all_windows = list(windows(tokenizer, a.corpus, a.text, a.max_len))
    mine = all_windows[rank::world]
    if len(mine) < a.batch_size:
        raise SystemExit(f"rank {rank}: {len(mine)} windows, fewer than --batch-size {a.batch_size}")
    random.Random(a.seed + rank).shuffle(mine)
    model.train()
    losses = []
    for step in range(a.steps):
        start = step * a.batch_size % len(mine)
        batch = collator([{"input_ids": ids} for ids in (mine + mine)[start : start + a.batch_size]])
        batch = {k: v.to(device) for k, v in batch.items()}
        loss = model(**batch).loss
        optim.zero_grad()
        loss.backward()  # DDP averages the gradients over all ranks here
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        losses.append(mean.item() / world)

    # Every rank must hold the same weights.
    checksum = torch.tensor([sum(p.double().sum().item() for p in model.module.parameters())], device=device)
    sums = [torch.zeros_like(checksum) for _ in range(world)]
    dist.all_gather(sums, checksum)
    if rank == 0:
        if max(abs(s.item() - sums[0].item()) for s in sums) > 1e-6 * max(1.0, abs(sums[0].item())):
            raise SystemExit(f"ranks disagree on the weights: {[s.item() for s in sums]}")
        model.module.save_pretrained(a.output)
        tokenizer.save_pretrained(a.output)
        with open(os.path.join(a.output, "ddp_log.json"), "w") as f:
            json.dump({"world_size": world, "losses": losses, "windows": len(all_windows)}, f, indent=1)
        print(f"{world} ranks, {a.steps} steps: loss {losses[0]:.4f} -> {losses[-1]:.4f}; saved {a.output}")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

"""PyTorch's side of bench/gpu.sh: tokens/s of full-parameter training of the same model folder on
the same GPU — masked-LM pretraining (`--task mlm`, DataCollatorForLanguageModeling's masking) or
sequence classification (`--task cls`) — at a fixed sequence length, AdamW, fp32 or bf16 autocast.
Steps after the first `--warmup` are timed (CUDA synchronised). Prints one JSON line.

    python3 bench/torch_train_speed.py --model DIR --task mlm --seq 128 --batch 32 --steps 30
"""
import argparse
import json
import time

import torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--task", choices=["mlm", "cls"], required=True)
p.add_argument("--seq", type=int, required=True)
p.add_argument("--batch", type=int, required=True)
p.add_argument("--steps", type=int, default=30)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
p.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke test of bench/gpu.sh")
a = p.parse_args()

dev = torch.device(a.device)
sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
torch.backends.cuda.matmul.allow_tf32 = False  # savant computes in f32
if a.task == "mlm":
    model = AutoModelForMaskedLM.from_pretrained(a.model).to(dev)
else:
    model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=4).to(dev)
optim = torch.optim.AdamW(model.parameters(), lr=5e-5)
model.train()
vocab = model.config.vocab_size
ids = torch.randint(5, vocab, (a.batch, a.seq), device=dev)
ids[:, 0], ids[:, -1] = 2, 3
mask = torch.ones_like(ids)
if a.task == "mlm":
    chosen = torch.rand(ids.shape, device=dev) < 0.15
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    inputs = torch.where(chosen, torch.full_like(ids, 4), ids)
else:
    labels = torch.randint(0, 4, (a.batch,), device=dev)
    inputs = ids
times = []
for step in range(a.warmup + a.steps):
    sync()
    t = time.perf_counter()
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
        loss = model(input_ids=inputs, attention_mask=mask, labels=labels).loss
    optim.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optim.step()
    sync()
    if step >= a.warmup:
        times.append(time.perf_counter() - t)
seconds = sum(times)
print(json.dumps({"task": a.task, "seq": a.seq, "batch": a.batch, "precision": a.precision,
                  "tokens_per_second": a.batch * a.seq * len(times) / seconds, "step_seconds": seconds / len(times)}))

#!/usr/bin/env python3
"""The PyTorch + transformers + PEFT peer of `savant train`'s recipe (mean-pooled LP-FT), for
bench/quality.py's `peft_lora` / `torch_full` rows. Run with the model venv's Python:

    tests/fixtures/model/.venv/bin/python bench/peer_lpft.py --model M --train T --val V --test X \
        --mode lora --out preds.csv --json result.json [--epochs 3] [--threads 2]

The recipe, written as a careful HF/PEFT/sklearn user would, with savant's defaults:
  1. encoder: transformers' AutoModel (BertModel), mean pooling over the attention mask (as
     sentence-transformers pools all-MiniLM-L6-v2); max length 128, the tokenizer's own
     padding/truncation switched off so that only padding=True/truncation=True apply;
  2. probe (Kumar et al. 2022's LP step): the frozen encoder's mean-pooled vectors of train and
     val, standardised (sklearn StandardScaler), LogisticRegression(C) for C in 0.001..10 (core's
     PROBE_CS), the best val macro-F1 kept (the first on a tie), folded into one Linear layer on
     the raw vectors: W / scale, b - (W / scale) . mean. Its val score is epoch 0;
  3. head: Dropout(0.1) + that Linear over the pooled vector;
  4. fine-tune: lora = PEFT LoRA r 8, alpha 16, dropout 0.1 on query and value (the head trained
     too), lr 1e-3; full = every weight, lr 5e-5. AdamW (betas 0.9/0.999, eps 1e-8) with HF
     Trainer's groups (weight decay 0.01 on matrices, none on biases and LayerNorm),
     get_linear_schedule_with_warmup (10% warmup, ceil), clip_grad_norm_ 1.0, batches of 16 cut
     as savant cuts them (a seeded shuffle, windows of 50 batches sorted by length, the batches
     shuffled), 3 epochs; after each epoch the val macro-F1, the best epoch (0 = the probe) kept;
  5. test: the kept weights' class probabilities, written as bench/quality.py's prediction CSV
     (label, pred, prob_<class>) for `savant eval` to score.
Timings: probe_s (embedding + fitting), train_s (the training loops, per-batch tokenisation
included), val_s; tokens/s = real tokens of the training batches / train_s.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import random
import sys
import time
from pathlib import Path

SEED = 42
MAX_LEN = 128
BATCH = 16
WINDOW_BATCHES = 50
WARMUP = 0.1
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
HEAD_DROPOUT = 0.1
PROBE_CS = (0.001, 0.01, 0.1, 1.0, 10.0)
LR = {"lora": 1e-3, "full": 5e-5}
LORA = {"r": 8, "alpha": 16, "dropout": 0.1, "targets": ["query", "value"]}
EVAL_BATCH = 64


def read_labelled(path: str) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def epoch_batches(rng: random.Random, lengths: list[int]) -> list[list[int]]:
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    for w in range(0, len(order), BATCH * WINDOW_BATCHES):
        window = sorted(order[w : w + BATCH * WINDOW_BATCHES], key=lambda i: -lengths[i])
        batches.extend(window[i : i + BATCH] for i in range(0, len(window), BATCH))
    rng.shuffle(batches)
    return batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for a in ("--model", "--train", "--val", "--test", "--out", "--json"):
        ap.add_argument(a, required=True)
    ap.add_argument("--mode", choices=sorted(LR), default="lora")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    t_start = time.perf_counter()

    import numpy as np
    import peft
    import sklearn
    import torch
    import transformers
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    rng = random.Random(SEED)

    texts, train_labels = read_labelled(args.train)
    val_texts, val_labels = read_labelled(args.val)
    test_texts, test_labels = read_labelled(args.test)
    classes = sorted(set(train_labels))
    cid = {c: i for i, c in enumerate(classes)}
    y_train = np.array([cid[l] for l in train_labels])
    y_val = np.array([cid[l] for l in val_labels])

    tok = AutoTokenizer.from_pretrained(args.model)
    tok.backend_tokenizer.no_padding()
    tok.backend_tokenizer.no_truncation()
    encode = lambda batch: tok(batch, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
    lengths = [len(ids) for ids in tok(texts, truncation=True, max_length=MAX_LEN)["input_ids"]]

    encoder = AutoModel.from_pretrained(args.model, add_pooling_layer=False, dtype=torch.float32)

    def pooled(model, enc):
        h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                  token_type_ids=enc.get("token_type_ids")).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)

    def forward_rows(model, head, rows: list[str]) -> np.ndarray:
        """head(mean-pooled vectors) of every row, in row order (eval mode, no grad, batches
        sorted by length). With an Identity head: the vectors themselves."""
        model.eval()
        head.eval()
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        out = None
        with torch.no_grad():
            for s in range(0, len(order), EVAL_BATCH):
                sel = order[s : s + EVAL_BATCH]
                v = head(pooled(model, encode([rows[i] for i in sel]))).double().numpy()
                if out is None:
                    out = np.zeros((len(rows), v.shape[1]))
                out[sel] = v
        return out

    features = lambda rows: forward_rows(encoder, torch.nn.Identity(), rows)

    # --- 2. the probe -------------------------------------------------------------------------
    t0 = time.perf_counter()
    x_train, x_val = features(texts), features(val_texts)
    scaler = StandardScaler().fit(x_train)
    z_train, z_val = scaler.transform(x_train), scaler.transform(x_val)
    grid, best = [], None
    for c in PROBE_CS:
        lr = LogisticRegression(C=c, max_iter=3000).fit(z_train, y_train)
        f1 = float(f1_score(y_val, lr.predict(z_val), labels=range(len(classes)), average="macro", zero_division=0))
        grid.append({"C": c, "val_f1_macro": f1})
        if best is None or f1 > best[1]:
            best = (lr, f1, c)
    probe, probe_f1, probe_c = best
    w = probe.coef_ / scaler.scale_
    b = probe.intercept_ - w @ scaler.mean_
    probe_s = time.perf_counter() - t0

    head = torch.nn.Sequential(torch.nn.Dropout(HEAD_DROPOUT), torch.nn.Linear(x_train.shape[1], len(classes)))
    with torch.no_grad():
        head[1].weight.copy_(torch.from_numpy(w).float())
        head[1].bias.copy_(torch.from_numpy(b).float())

    # --- 4. fine-tune ---------------------------------------------------------------------------
    model = encoder
    if args.mode == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(encoder, LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                                   target_modules=list(LORA["targets"])))
    named = [(n, p) for n, p in list(model.named_parameters()) + list(head.named_parameters()) if p.requires_grad]
    params = [p for _, p in named]
    trainable = sum(p.numel() for p in params)
    total = sum(p.numel() for p in model.parameters()) + sum(p.numel() for p in head.parameters())
    optimizer = torch.optim.AdamW(
        [{"params": [p for _, p in named if p.ndim > 1], "weight_decay": WEIGHT_DECAY},
         {"params": [p for _, p in named if p.ndim <= 1], "weight_decay": 0.0}],
        lr=LR[args.mode], betas=(0.9, 0.999), eps=1e-8)
    steps = math.ceil(len(texts) / BATCH) * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(WARMUP * steps), steps)

    def trainable_state():
        return copy.deepcopy({n: p.detach().clone() for n, p in named})

    def macro_f1(logits, y):
        return float(f1_score(y, logits.argmax(1), labels=range(len(classes)), average="macro", zero_division=0))

    epochs = [{"epoch": 0, "val_f1_macro": probe_f1, "seconds": probe_s}]
    kept = (probe_f1, 0, trainable_state())
    train_s = val_s = 0.0
    real_tokens = 0
    losses = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        head.train()
        a = time.perf_counter()
        for sel in epoch_batches(rng, lengths):
            enc = encode([texts[i] for i in sel])
            y = torch.from_numpy(y_train[sel])
            loss = torch.nn.functional.cross_entropy(head(pooled(model, enc)), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            real_tokens += int(enc["attention_mask"].sum())
        e_train = time.perf_counter() - a
        train_s += e_train
        a = time.perf_counter()
        f1 = macro_f1(forward_rows(model, head, val_texts), y_val)
        e_val = time.perf_counter() - a
        val_s += e_val
        improved = f1 > kept[0]
        if improved:
            kept = (f1, epoch, trainable_state())
        epochs.append({"epoch": epoch, "val_f1_macro": f1, "improved": improved, "train_s": e_train, "val_s": e_val,
                       "mean_loss": sum(losses[-math.ceil(len(texts) / BATCH):]) / math.ceil(len(texts) / BATCH)})
        print(f"epoch {epoch}: val macro-F1 {f1:.4f}{' (best)' if improved else ''}, {e_train:.0f} s", flush=True)
        if not all(math.isfinite(l) for l in losses):
            raise SystemExit(f"the loss became non-finite at epoch {epoch}")

    with torch.no_grad():
        for n, p in named:
            p.copy_(kept[2][n])
    logits = forward_rows(model, head, test_texts)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        wr = csv.writer(f, lineterminator="\n")
        wr.writerow(["label", "pred"] + [f"prob_{c}" for c in classes])
        for y, p in zip(test_labels, probs):
            wr.writerow([y, classes[int(p.argmax())]] + [repr(float(x)) for x in p])
    tmp.replace(out)

    result = {
        "mode": args.mode, "classes": classes, "rows": len(texts), "val_rows": len(val_texts), "test_rows": len(test_texts),
        "probe_c": probe_c, "probe_val_f1_macro": probe_f1, "probe_grid": grid, "best_epoch": kept[1],
        "val": {"f1_macro": kept[0]}, "epochs": epochs, "steps": steps, "lr": LR[args.mode],
        "probe_s": probe_s, "train_seconds": train_s, "val_s": val_s, "wall_s": time.perf_counter() - t_start,
        "train_tokens_per_second": real_tokens / train_s if train_s else None, "real_tokens": real_tokens,
        "trainable_params": trainable, "total_params": total, "threads": torch.get_num_threads(),
        "truncated": sum(1 for l in lengths if l >= MAX_LEN),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                     "sklearn": sklearn.__version__, "numpy": np.__version__},
    }
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())

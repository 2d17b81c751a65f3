"""Random-weight BERT folders and synthetic text for bench/gpu.sh (throughput does not depend on
the weights): `minilm` (all-MiniLM-L6-v2's shape: 6 layers, hidden 384) and `bert-base` (12
layers, hidden 768), each with a 30,522-entry WordPiece vocabulary whose words ("w123") are one
token each, so a text of N words is exactly N tokens + [CLS]/[SEP].

    python3 bench/gpu_models.py OUT_DIR
"""
import csv
import json
import os
import random
import sys

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertForMaskedLM

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
words = [f"w{i}" for i in range(30522 - len(special))]
vocab = os.path.join(out, "vocab.txt")
with open(vocab, "w") as f:
    f.write("\n".join(special + words) + "\n")
shapes = {
    "minilm": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}
for name, shape in shapes.items():
    path = os.path.join(out, name)
    config = BertConfig(vocab_size=30522, max_position_embeddings=512, **shape)
    BertForMaskedLM(config).save_pretrained(path)
    # BERT's WordPiece pipeline over this vocabulary (built directly: transformers 5's
    # BertTokenizerFast(vocab_file=...) saves a tokenizer.json without the vocabulary).
    ids = {w: i for i, w in enumerate(special + words)}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.add_special_tokens(special)
    tok.save(os.path.join(path, "tokenizer.json"))
    with open(os.path.join(path, "vocab.txt"), "w") as f:
        f.write("\n".join(special + words) + "\n")

rng = random.Random(0)
text = lambda n: " ".join(rng.choice(words) for _ in range(n))
with open(os.path.join(out, "corpus.jsonl"), "w") as f:
    for _ in range(2000):
        f.write(json.dumps({"text": text(600)}) + "\n")
for split, rows in (("train", 2000), ("val", 16)):
    with open(os.path.join(out, f"{split}.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(rows):
            w.writerow([text(600), f"c{i % 4}"])
print(out)

"""Checks `fedex eval` of a causal LM (and optionally an adapter) against transformers and PEFT
(manual; needs torch, transformers, peft).

    fedex eval --model <dir> [--adapter <adapter>] --data <text.jsonl> --json
    python checkEval.py <dir> <text.jsonl> [<adapter>]

Computes the loss as fedex eval does on {"text"} records: each text tokenized with the model's
tokenizer and its special tokens (BOS where tokenizer_config.json adds it), eos appended, padded on
the right, the mean next-token loss over the real tokens, in float32 with eager attention (Gemma 2's
soft caps need it). Prints the base loss and, with an adapter, the loss through
PeftModel.from_pretrained. docs/models.md quotes one run on a Gemma 3 folder.
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

model_dir, data_file = sys.argv[1:3]
adapter_dir = sys.argv[3] if len(sys.argv) > 3 else None
tok = AutoTokenizer.from_pretrained(model_dir)
texts = [json.loads(line)['text'] for line in open(data_file) if line.strip()]
rows = [tok(t).input_ids + [tok.eos_token_id] for t in texts]
width = max(map(len, rows))
ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
labels = ids.masked_fill(mask == 0, -100)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation='eager')
out = {'tokens': int(mask.sum()), 'scored': int(mask.sum()) - len(rows)}
with torch.no_grad():
    out['base_loss'] = float(model(input_ids=ids, attention_mask=mask, labels=labels).loss)
    if adapter_dir is not None:
        from peft import PeftModel
        peft_model = PeftModel.from_pretrained(model, adapter_dir)
        out['adapter_loss'] = float(peft_model(input_ids=ids, attention_mask=mask, labels=labels).loss)
print(json.dumps(out))

"""PyTorch reference for the trainer benchmark (run by bench/trainer.ts).

Reads one JSON object of arguments from argv[1] and prints one JSON object of results.

The same training step as the project's trainer, in plain torch (no transformers): Hugging Face's
GPT2LMHeadModel math written out — Conv1D layout (x @ W + b, W stored [in, out]), gelu_new (tanh
approximation), LayerNorm eps from the config, eager causal attention, lm_head tied to wte — with
PEFT-style LoRA (A [r, in] Kaiming-uniform, B [out, r] zero, scaling alpha / r, no dropout) on the
modules whose path equals or ends with ".<target>" (PEFT's rule for a list of target_modules),
the HF shifted cross-entropy loss, backward, and torch.optim.AdamW on the LoRA parameters only.

The base weights are read from the same model.safetensors the project's trainer reads (F32), and
the batch is the same rows of the same pre-tokenized JSONL file, so the first step's loss (B = 0:
the base model's loss) must equal the project's; it is reported for that check.
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

from common import read_rows, read_safetensors, train_and_report


class LoraConv1D(torch.nn.Module):
    """transformers' Conv1D (weight [in, out]) with an optional PEFT LoRA adapter (fan_in_fan_out)."""

    def __init__(self, weight, bias, rank, alpha):
        super().__init__()
        self.weight = torch.nn.Parameter(weight, requires_grad=False)
        self.bias = torch.nn.Parameter(bias, requires_grad=False)
        self.lora_a = None
        if rank > 0:
            n_in, n_out = weight.shape
            a = torch.empty(rank, n_in)
            torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # PEFT's init of lora_A
            self.lora_a = torch.nn.Parameter(a)
            self.lora_b = torch.nn.Parameter(torch.zeros(n_out, rank))
            self.scaling = alpha / rank

    def forward(self, x):
        size_out = x.size()[:-1] + (self.weight.size(-1),)
        y = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(size_out)
        if self.lora_a is not None:
            y = y + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scaling
        return y


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Block(torch.nn.Module):
    def __init__(self, w, prefix, cfg, adapt):
        super().__init__()
        d = cfg["n_embd"]
        eps = cfg["layer_norm_epsilon"]
        self.n_head = cfg["n_head"]
        self.ln_1 = torch.nn.LayerNorm(d, eps=eps)
        self.ln_2 = torch.nn.LayerNorm(d, eps=eps)
        for ln, name in ((self.ln_1, "ln_1"), (self.ln_2, "ln_2")):
            ln.weight = torch.nn.Parameter(w[f"{prefix}.{name}.weight"], requires_grad=False)
            ln.bias = torch.nn.Parameter(w[f"{prefix}.{name}.bias"], requires_grad=False)

        def conv(path):
            return LoraConv1D(w[f"{prefix}.{path}.weight"], w[f"{prefix}.{path}.bias"], *adapt(f"{prefix}.{path}"))

        self.c_attn = conv("attn.c_attn")
        self.attn_c_proj = conv("attn.c_proj")
        self.c_fc = conv("mlp.c_fc")
        self.mlp_c_proj = conv("mlp.c_proj")

    def split_heads(self, t):
        b, s, d = t.size()
        return t.view(b, s, self.n_head, d // self.n_head).permute(0, 2, 1, 3)

    def attention(self, x, causal):
        q, k, v = self.c_attn(x).split(x.size(-1), dim=2)
        q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
        # transformers' GPT2Attention._attn (eager): scale, causal mask by where, softmax, weighted sum.
        w = torch.matmul(q, k.transpose(-1, -2))
        w = w / torch.full([], v.size(-1) ** 0.5, dtype=w.dtype)
        s = q.size(-2)
        mask_value = torch.full([], torch.finfo(w.dtype).min, dtype=w.dtype)
        w = torch.where(causal[:, :, :s, :s], w, mask_value)
        w = torch.softmax(w, dim=-1)
        out = torch.matmul(w, v)
        b, h, s, hd = out.size()
        out = out.permute(0, 2, 1, 3).contiguous().view(b, s, h * hd)
        return self.attn_c_proj(out)

    def forward(self, h, causal):
        h = h + self.attention(self.ln_1(h), causal)
        return h + self.mlp_c_proj(gelu_new(self.c_fc(self.ln_2(h))))


class Gpt2Lm(torch.nn.Module):
    def __init__(self, w, cfg, rank, alpha, targets):
        super().__init__()
        self.adapted = []

        def adapt(path):
            peft_path = f"transformer.{path}"
            if any(peft_path == t or peft_path.endswith("." + t) for t in targets):
                self.adapted.append(peft_path)
                return rank, alpha
            return 0, alpha

        self.wte = torch.nn.Parameter(w["wte.weight"], requires_grad=False)
        self.wpe = torch.nn.Parameter(w["wpe.weight"], requires_grad=False)
        self.h = torch.nn.ModuleList([Block(w, f"h.{i}", cfg, adapt) for i in range(cfg["n_layer"])])
        self.ln_f = torch.nn.LayerNorm(cfg["n_embd"], eps=cfg["layer_norm_epsilon"])
        self.ln_f.weight = torch.nn.Parameter(w["ln_f.weight"], requires_grad=False)
        self.ln_f.bias = torch.nn.Parameter(w["ln_f.bias"], requires_grad=False)
        n = cfg["n_positions"]
        self.register_buffer("causal", torch.tril(torch.ones((n, n), dtype=torch.bool)).view(1, 1, n, n))

    def forward(self, ids):
        s = ids.size(1)
        h = F.embedding(ids, self.wte) + F.embedding(torch.arange(s).unsqueeze(0), self.wpe)
        for block in self.h:
            h = block(h, self.causal)
        logits = F.linear(self.ln_f(h), self.wte)  # lm_head tied to wte, no bias
        # GPT2LMHeadModel's loss: logits[:, :-1] against labels[:, 1:], mean over tokens.
        shift_logits = logits[..., :-1, :].contiguous()
        shift_labels = ids[..., 1:].contiguous()
        return F.cross_entropy(shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1))


def main():
    args = json.loads(sys.argv[1])
    threads = int(args["threads"])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with open(args["model_dir"] + "/config.json") as f:
        cfg = json.load(f)
    w = read_safetensors(args["model_dir"] + "/model.safetensors")
    model = Gpt2Lm(w, cfg, args["rank"], args["alpha"], args["target_modules"])
    del w
    ids = read_rows(args)
    train_and_report(model, ids, args)


if __name__ == "__main__":
    main()

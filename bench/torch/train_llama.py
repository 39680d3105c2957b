"""PyTorch reference of a Llama-family training step, for the GPU benchmark (bench/gpuTrainer.ts).

Reads one JSON object of arguments from argv[1] and prints one JSON object of results.

transformers' LlamaForCausalLM math written out in plain torch (no transformers): RMSNorm
(x * rsqrt(mean(x^2) + eps) * w, in float32), q/k/v/o projections with grouped-query attention,
RoPE with rotate_half (inv_freq = theta^(-2i/d), positions 0..T-1), causal softmax attention
(torch's scaled_dot_product_attention, is_causal), the SwiGLU MLP down(silu(gate) * up), a final
RMSNorm, lm_head (tied to the embeddings when the checkpoint has no lm_head.weight), and the
shifted cross-entropy loss. PEFT-style LoRA (A Kaiming-uniform, B zero, scaling alpha / r) on the
modules whose name is in target_modules; torch.optim.AdamW on the LoRA parameters only.

Arguments: model_dir, data (pre-tokenized JSONL rows of seq_len ids), batch_size, seq_len, rank,
alpha, target_modules, lr, warmup, steps, threads, device ("cpu" or "cuda"), frozen ("float32",
"float16" or "bfloat16": the dtype the frozen weights are held in; below float32 the step runs
under torch.autocast in that dtype, the usual way to train over half-precision weights).

The first step's loss is the base model's (B = 0), so at frozen float32 it must equal the project's
trainer on the same rows; it is reported for that check.
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

from common import read_rows, read_safetensors, train_and_report

class LoraLinear(torch.nn.Module):
    """nn.Linear (weight [out, in], no bias) with an optional PEFT LoRA adapter (float32 factors)."""

    def __init__(self, weight, rank, alpha):
        super().__init__()
        self.weight = torch.nn.Parameter(weight, requires_grad=False)
        self.lora_a = None
        if rank > 0:
            n_out, n_in = weight.shape
            a = torch.empty(rank, n_in, device=weight.device)
            torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))
            self.lora_a = torch.nn.Parameter(a)
            self.lora_b = torch.nn.Parameter(torch.zeros(n_out, rank, device=weight.device))
            self.scaling = alpha / rank

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.lora_a is not None:
            y = y + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scaling
        return y


def rms_norm(x, w, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Layer(torch.nn.Module):
    def __init__(self, w, p, cfg, adapt):
        super().__init__()
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads", self.heads)
        self.head_dim = cfg.get("head_dim") or cfg["hidden_size"] // self.heads
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.in_norm = torch.nn.Parameter(w[f"{p}.input_layernorm.weight"], requires_grad=False)
        self.post_norm = torch.nn.Parameter(w[f"{p}.post_attention_layernorm.weight"], requires_grad=False)
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            setattr(self, name, LoraLinear(w[f"{p}.self_attn.{name}.weight"], *adapt(f"{p}.self_attn.{name}", name)))
        for name in ("gate_proj", "up_proj", "down_proj"):
            setattr(self, name, LoraLinear(w[f"{p}.mlp.{name}.weight"], *adapt(f"{p}.mlp.{name}", name)))

    def forward(self, h, cos, sin):
        b, s, _ = h.shape
        x = rms_norm(h, self.in_norm, self.eps)
        q = self.q_proj(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        if hasattr(F, "scaled_dot_product_attention"):
            attn = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch < 2.0 (Debian 12's 1.13): the eager causal softmax
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            causal = torch.ones(s, s, dtype=torch.bool, device=h.device).tril()
            attn = torch.softmax(scores.masked_fill(~causal, torch.finfo(scores.dtype).min), dim=-1) @ v
        h = h + self.o_proj(attn.transpose(1, 2).reshape(b, s, -1))
        y = rms_norm(h, self.post_norm, self.eps)
        return h + self.down_proj(F.silu(self.gate_proj(y)) * self.up_proj(y))


class LlamaLm(torch.nn.Module):
    def __init__(self, w, cfg, rank, alpha, targets):
        super().__init__()
        self.adapted = []

        def adapt(path, name):
            if name in targets:
                self.adapted.append(path)
                return rank, alpha
            return 0, alpha

        self.embed = torch.nn.Parameter(w["model.embed_tokens.weight"], requires_grad=False)
        self.layers = torch.nn.ModuleList([Layer(w, f"model.layers.{i}", cfg, adapt) for i in range(cfg["num_hidden_layers"])])
        self.norm = torch.nn.Parameter(w["model.norm.weight"], requires_grad=False)
        self.head = torch.nn.Parameter(w["lm_head.weight"], requires_grad=False) if "lm_head.weight" in w else self.embed
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        hd = self.layers[0].head_dim
        self.inv_freq = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2, dtype=torch.float32, device=self.embed.device) / hd))

    def forward(self, ids):
        s = ids.size(1)
        freqs = torch.outer(torch.arange(s, dtype=torch.float32, device=ids.device), self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        h = F.embedding(ids, self.embed)
        for layer in self.layers:
            h = layer(h, cos.to(h.dtype), sin.to(h.dtype))
        logits = F.linear(rms_norm(h, self.norm, self.eps), self.head).float()
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))


def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(int(args["threads"]))
    torch.manual_seed(0)
    device = args.get("device", "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device cuda: torch.cuda.is_available() is false")
    frozen = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[args.get("frozen", "float32")]
    with open(args["model_dir"] + "/config.json") as f:
        cfg = json.load(f)
    w = read_safetensors(args["model_dir"] + "/model.safetensors", frozen, device)
    model = LlamaLm(w, cfg, args["rank"], args["alpha"], args["target_modules"])
    del w
    ids = read_rows(args, device)
    train_and_report(model, ids, args, device, frozen if frozen != torch.float32 else None, lambda: {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "frozen": args.get("frozen", "float32"),
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
    })


if __name__ == "__main__":
    main()

"""Checks a `fedex export` of a GPT-2 federation with the real PEFT (manual; needs torch, transformers, peft).

    python checkExport.py <original base dir> <export>/adapter <export>/model/model.safetensors \
        <simulate out>/adapters/fedex/round-00R/base/model.safetensors <simulate out>/adapters/fedex/round-00R/global

Loads the base in float64, applies the exported adapter with PeftModel.from_pretrained, merges it,
and prints, per c_attn weight, the largest relative difference (to the size of the total update) of
PEFT's merged weight and of fedex's merged model from the federated model: the last round's base plus
s·(B̄Ā)ᵀ of its global adapter. docs/export.md quotes one run.
"""
import sys, torch, json
from transformers import AutoModelForCausalLM
from peft import PeftModel
from safetensors.torch import load_file
base_dir, adapter_dir, merged_file, fed_base, fed_global = sys.argv[1:6]
base = AutoModelForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float64)
model = PeftModel.from_pretrained(base, adapter_dir)
merged = model.merge_and_unload()
sd = merged.state_dict()
ours = load_file(merged_file)
fb = load_file(fed_base)
# federated model: round base + s * (B A)^T (conv1d) from the global adapter
cfg = json.load(open(fed_global + '/adapter_config.json'))
g = load_file(fed_global + '/adapter_model.safetensors')
s = cfg['lora_alpha'] / cfg['r']
worst_peft = worst_ours = 0
for k, v in ours.items():
    if not k.endswith('c_attn.weight'): continue
    mod = k[:-len('.weight')]
    kb = [x for x in g if x.endswith(f'{mod}.lora_B.weight')][0]; ka = kb.replace('lora_B', 'lora_A')
    B = g[kb].double(); A = g[ka].double()
    sdk = [x for x in sd if x.endswith(k)][0]
    fed = fb[k].double() + s * (B @ A).T
    p = sd[sdk].double()
    upd = (fed - load_file(base_dir + '/model.safetensors')[k].double()).norm()
    worst_peft = max(worst_peft, ((p - fed).norm() / upd).item())
    worst_ours = max(worst_ours, ((v.double() - fed).norm() / upd).item())
print(json.dumps({'peft_merged_vs_federated_rel_to_update': worst_peft, 'fedex_merged_vs_federated_rel_to_update': worst_ours}))

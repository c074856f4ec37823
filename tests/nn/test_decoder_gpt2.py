"""The decoder-only model against Hugging Face's GPT-2: with GPT-2's weights transplanted, the same logits, and the
same greedy continuation (skipped where `transformers` is not installed)."""

from __future__ import annotations

import pytest
import torch

from attnkit.nn import Decoder, sample

transformers = pytest.importorskip("transformers")

VOCAB, DIM, DEPTH, HEADS, CONTEXT = 50, 32, 2, 4, 24


def gpt2() -> torch.nn.Module:
    config = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_positions=CONTEXT,
        n_embd=DIM,
        n_layer=DEPTH,
        n_head=HEADS,
        activation_function="gelu",  # exact GELU, as ffn=mlp's (GPT-2's own is the tanh approximation)
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config).eval()


def transplant(reference: torch.nn.Module) -> Decoder:
    """attnkit's decoder with GPT-2's weights (GPT-2's Conv1D layers store their weights transposed)."""
    net = Decoder(VOCAB, dim=DIM, depth=DEPTH, heads=HEADS, max_len=CONTEXT, pos_enc="learned").eval()
    hf = reference.transformer
    with torch.no_grad():
        net.embed.weight.copy_(hf.wte.weight)
        net.pos_enc.weight.copy_(hf.wpe.weight)
        for block, layer in zip(net.blocks, hf.h, strict=True):
            for ours, theirs in ((block.norm1, layer.ln_1), (block.norm2, layer.ln_2)):
                ours.weight.copy_(theirs.weight)
                ours.bias.copy_(theirs.bias)
            q, k, v = layer.attn.c_attn.weight.t().chunk(3, dim=0)
            qb, kb, vb = layer.attn.c_attn.bias.chunk(3)
            attn = block.attn
            for proj, w, b in ((attn.q_proj, q, qb), (attn.k_proj, k, kb), (attn.v_proj, v, vb)):
                proj.weight.copy_(w)
                proj.bias.copy_(b)
            attn.out_proj.weight.copy_(layer.attn.c_proj.weight.t())
            attn.out_proj.bias.copy_(layer.attn.c_proj.bias)
            block.ffn.fc1.weight.copy_(layer.mlp.c_fc.weight.t())
            block.ffn.fc1.bias.copy_(layer.mlp.c_fc.bias)
            block.ffn.fc2.weight.copy_(layer.mlp.c_proj.weight.t())
            block.ffn.fc2.bias.copy_(layer.mlp.c_proj.bias)
        net.norm.weight.copy_(hf.ln_f.weight)
        net.norm.bias.copy_(hf.ln_f.bias)
    return net


def test_gpt2_weights_give_gpt2_logits_and_continuations() -> None:
    reference = gpt2()
    net = transplant(reference)
    ids = torch.randint(0, VOCAB, (3, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(net(ids), reference(ids).logits, atol=1e-4, rtol=1e-4)
        theirs = reference.generate(ids[:, :4], max_new_tokens=12, do_sample=False, pad_token_id=0)
    assert torch.equal(sample(net, ids[:, :4], max_new_tokens=12, temperature=0), theirs[:, 4:])

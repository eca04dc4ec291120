"""The README's six-line example of ACE on your own model runs as written, on a small
TransformerLens model, and its hooks do what the comment says."""

import re
from pathlib import Path

import torch
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README shows ACE on your own model in a python block"
    return blocks[0]


class Block(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(), nn.Linear(2 * d, d))
        self.hook_resid_post = HookPoint()

    def forward(self, x):
        return self.hook_resid_post(x + self.mlp(x))


class Small(HookedRootModule):
    """Embedding, four residual MLP blocks hooked as TransformerLens names them, a readout."""

    def __init__(self, d: int = 16, vocab: int = 11):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d) for _ in range(4))
        self.unembed = nn.Linear(d, vocab)
        self.setup()

    def forward(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.unembed(x)


def test_readme_example_runs_on_a_small_model():
    torch.manual_seed(0)
    model = Small().eval()
    tokens = torch.randint(0, 11, (40, 6))
    answers = torch.randint(0, 11, (40,))
    scope = {"model": model, "tokens": tokens, "answers": answers}
    exec(compile(_example(), str(README), "exec"), scope)
    core = scope["core"]
    assert 1 <= core.rank <= 16 and core.hook == "blocks.3.hook_resid_post"
    # the last line ran the model with the core removed; keeping all 16 dimensions changes nothing
    full = model(tokens)
    kept = model.run_with_hooks(tokens, fwd_hooks=core.hooks("keep", rank=16))
    assert torch.allclose(full, kept, atol=1e-4)

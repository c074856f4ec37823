"""The linear decoder of Segmenter (Strudel et al. 2021) and SETR-naive (Zheng et al. 2021): one linear map from each
patch token to class scores, upsampled to the image by the model."""

from __future__ import annotations

from torch import Tensor, nn

from attnkit.registry import register


@register("seg_decoder", "linear")
class LinearDecoder(nn.Module):
    """Class scores per patch: `[B, N, in_dim]` tokens on a `grid` (gh, gw) -> `[B, num_classes, gh, gw]`."""

    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, num_classes)
        nn.init.trunc_normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)

    def forward(self, tokens: Tensor, grid: tuple[int, int]) -> Tensor:
        scores = self.proj(tokens)  # [B, N, K]
        return scores.transpose(1, 2).reshape(scores.shape[0], -1, *grid)

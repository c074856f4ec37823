"""Greedy and beam-search decoding for encoder–decoder models, incremental with a KV cache.

Works with any model that exposes `encode(src, src_padding_mask) -> memory`,
`decode(tgt, memory, memory_padding_mask, cache=...) -> logits [B, N, V]` and `reorder_cache(cache, index)`, such as
`attnkit.nn.EncoderDecoder`; a model whose `copies_source` is true also gets `src=`, the source ids, in `decode`. The
source is encoded once; with `use_cache`, each step feeds only the newest token, the decoder's self-attention keys
and values grow in the cache (a kernel with a recurrent form, linear or performer, keeps a fixed-size state instead),
and cross-attention keys and values are computed once per source. Sentences leave the batch as soon as they are
finished.

One loop, `generate`, serves every strategy; a strategy (a `Search`: `Greedy`, `BeamSearch`) only chooses the next
tokens from their constrained log-probabilities and says which hypotheses go on. Sampling (temperature, top-k,
top-p) is `Sample`, a `Greedy` whose `pick` draws instead of taking the most probable token.

Lengths: a sentence of n source tokens gets at most L = max_len_a · n + max_len_b target tokens (capped by `max_len`
and by the model's `max_len`), then EOS is forced. The padding and BOS ids are never generated. Outputs are
`[B, T]`, without BOS, EOS included, padded with `pad_id` after EOS. A negative `eos_id` means "no end token":
every sentence runs to exactly L tokens (useful for timing); a model whose `prompted` is true (decoder-only,
`attnkit.nn.Decoder`: its prompt is the "source") takes a negative `bos_id` and `pad_id`, no such token (`sample`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn.multihead import held_stacks

NEG_INF = float("-inf")
# which tokens each hypothesis may take next: (tokens [R, t] so far, each row's source ids [R, Ns] or None) -> [R, V]
# bool; a function of the tokens alone, so cached and uncached decoding agree (attnkit.text.words.WordConstraint)
Constraint = Callable[[Tensor, "Tensor | None"], Tensor]


@contextmanager
def _inference(model: nn.Module) -> Iterator[None]:
    """Eval mode, no autograd and the attention layers' stacked q/k/v weights held for the duration; the model's
    training flag is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), held_stacks(model):
            yield
    finally:
        model.train(was_training)


def _check_ids(model: nn.Module, **ids: int) -> None:
    vocab = getattr(model, "tgt_vocab", None)
    for key, value in ids.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} must be an integer token id")
        if vocab is not None and value >= vocab:
            raise ConfigError(f"{key}={value} is outside the target vocabulary of {vocab} ids; use the tokenizer's id")
        if value < 0 and key != "eos_id" and not getattr(model, "prompted", False):
            raise ConfigError(f"{key}={value} must be a token id >= 0")


def max_lengths(
    model: nn.Module,
    src_padding_mask: Tensor,
    *,
    max_len_a: float,
    max_len_b: int,
    max_len: int | None,
    min_len: int = 0,
) -> Tensor:
    """`[B]` most target tokens per sentence (EOS not counted): a · source length + b, within the caps."""
    if max_len_a < 0 or max_len_b < 0:
        raise ConfigError(f"max_len_a={max_len_a} and max_len_b={max_len_b} must be >= 0 (target length a·n + b)")
    if max_len is not None and max_len <= 0:
        raise ConfigError(f"max_len={max_len} must be a positive number of target tokens (or null)")
    if min_len < 0:
        raise ConfigError(f"min_len={min_len} must be >= 0")
    caps = [c for c in (max_len, _model_cap(model)) if c is not None]
    cap = min(caps) if caps else None
    if cap is not None and min_len > cap:
        raise ConfigError(f"min_len={min_len} exceeds the maximum target length {cap}; lower min_len or raise max_len")
    source_len = (~src_padding_mask.bool()).sum(dim=1).double()
    limits = torch.floor(max_len_a * source_len + max_len_b).long().clamp(min=min_len)
    return limits if cap is None else limits.clamp(max=cap)


def _model_cap(model: nn.Module) -> int | None:
    """BOS plus L tokens (plus the forced EOS step) must fit the decoder's positions."""
    limit = getattr(model, "max_len", None)
    return None if limit is None else int(limit) - 1


def _next_log_probs(
    logits: Tensor,
    hyps: Tensor,
    limits: Tensor,
    *,
    step: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    min_len: int,
    no_repeat_ngram: int = 0,
    word_starts: Tensor | None = None,
    stutter_free: Tensor | None = None,
    repetition_penalty: float = 1.0,
    allowed: Tensor | None = None,
) -> Tensor:
    """Log-probabilities `[R, V]` of the next token after `hyps` `[R, step]`, with the search's constraints.

    Padding and BOS are never generated; EOS is forbidden before `min_len` tokens and forced once a row has
    `limits` `[R]` tokens; `no_repeat_ngram` forbids a token that would repeat an n-gram of the hypothesis (of
    words when `word_starts` is given: see `_repeated_words`, also for `stutter_free`); `repetition_penalty` p > 1
    divides the positive logits of the tokens the hypothesis already holds by p and multiplies the negative ones
    (Keskar et al. 2019); `allowed` `[R, V]` bool (a `Constraint`'s answer) forbids the tokens it leaves False, and a
    row it leaves nothing (nor the others) ends with EOS. Constrained entries become -inf; the others keep their
    log-probability.
    """
    scores = logits.float()
    if repetition_penalty != 1.0 and hyps.shape[1]:
        seen = scores.gather(1, hyps)
        scores = scores.scatter(1, hyps, torch.where(seen > 0, seen / repetition_penalty, seen * repetition_penalty))
    logp = torch.log_softmax(scores, dim=-1)
    vocab = logp.shape[-1]
    eos_logp = logp[:, eos_id].clone() if eos_id >= 0 else None
    for banned in {pad_id, bos_id} - {eos_id}:
        if 0 <= banned < vocab:
            logp[:, banned] = NEG_INF
    if no_repeat_ngram > 0:
        if word_starts is None:
            logp.masked_fill_(_repeated_ngrams(hyps, no_repeat_ngram, vocab), NEG_INF)
        else:
            logp.masked_fill_(_repeated_words(hyps, no_repeat_ngram, word_starts, stutter_free), NEG_INF)
    if allowed is not None:
        logp.masked_fill_(~allowed, NEG_INF)
        stuck = ~logp.isfinite().any(dim=-1)
        if eos_id >= 0 and stuck.any():
            logp[stuck, eos_id] = eos_logp[stuck]
    if eos_id >= 0:
        if step < min_len:
            logp[:, eos_id] = NEG_INF
        at_limit = limits <= step
        if at_limit.any():
            logp[at_limit] = NEG_INF
            logp[at_limit, eos_id] = eos_logp[at_limit]
    return logp


def _repeated_ngrams(hyps: Tensor, n: int, vocab: int) -> Tensor:
    """`[R, V]` True for each token that would complete an n-gram already in the row of `hyps` `[R, T]`."""
    rows, length = hyps.shape
    banned = torch.zeros(rows, vocab, dtype=torch.bool, device=hyps.device)
    if length < n:
        return banned
    grams = hyps.unfold(1, n, 1)  # [R, T - n + 1, n]
    tail = hyps[:, length - n + 1 :]  # the last n - 1 tokens, [R, n - 1]
    match = (grams[:, :, :-1] == tail[:, None, :]).all(dim=-1)  # [R, T - n + 1]
    hits = torch.zeros(rows, vocab, dtype=torch.long, device=hyps.device)
    hits.scatter_add_(1, grams[:, :, -1], match.long())
    return hits > 0


def _decode(
    model: nn.Module, tgt: Tensor, memory: Tensor, memory_mask: Tensor | None, cache: dict | None, src: Tensor
) -> Tensor:
    """`model.decode`, given the source ids too when the model copies from the source (`copies_source`)."""
    if getattr(model, "copies_source", False):
        return model.decode(tgt, memory, memory_mask, cache=cache, src=src)
    return model.decode(tgt, memory, memory_mask, cache=cache)


def _repeated_words(hyps: Tensor, n: int, word_starts: Tensor, stutter_free: Tensor | None = None) -> Tensor:
    """`[R, V]` True for each piece that would make the last n words of a row of `hyps` `[R, T]` repeat n words the
    row already holds, or would repeat the piece before it inside a word.

    A word is a piece that starts one (`word_starts` `[V]` bool) and the pieces after it that do not; the word being
    written counts with the pieces it has so far, so the piece that would complete a repeated word n-gram is banned
    ("▁seek ing ▁seek ing ▁seek" cannot go on with "ing" for n = 2), while the same pieces inside different words
    are free ("▁un do ... ▁un less"). A word that only begins like a repeated one is cut short at its last piece.
    Inside a word a piece never follows itself ("▁m ust ust"), except the pieces `stutter_free` `[V]` marks (digits).
    """
    rows = hyps.shape[0]
    banned = torch.zeros(rows, word_starts.numel(), dtype=torch.bool, device=hyps.device)
    starts = word_starts.to(hyps.device)[hyps].tolist()
    free = set() if stutter_free is None else set(stutter_free.nonzero().flatten().tolist())
    for r, (tokens, is_start) in enumerate(zip(hyps.tolist(), starts, strict=True)):
        words: list[tuple[int, ...]] = []
        for token, start in zip(tokens, is_start, strict=True):
            if start or not words:
                words.append((token,))
            else:
                words[-1] = (*words[-1], token)
        if not words:
            continue
        done, current = words[:-1], words[-1]
        if len(current) > 1 and current[-1] not in free:  # inside a word: no piece twice in a row
            banned[r, current[-1]] = True
        # the piece continues `current`: an earlier n-gram of complete words whose last word is `current` + piece
        for i in range(len(done) - n + 1):
            context, word = done[i : i + n - 1], done[i + n - 1]
            if context == done[len(done) - n + 1 :] and len(word) == len(current) + 1 and word[:-1] == current:
                banned[r, word[-1]] = True
        # the piece starts a word (`current` is complete): an earlier n-gram whose last word is that one piece
        for i in range(len(words) - n + 1):
            context, word = words[i : i + n - 1], words[i + n - 1]
            if len(word) == 1 and context == words[len(words) - n + 1 :]:
                banned[r, word[0]] = True
    return banned


def _longest(lengths: Tensor) -> int:
    return int(lengths.max()) if lengths.numel() else 0


def _prepare(
    model: nn.Module, src: Tensor, src_padding_mask: Tensor | None, pad_id: int
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Encode once: (memory `[B, Ns, dim]`, padding mask `[B, Ns]`, the mask to pass on, None without padding)."""
    if src.dim() != 2:
        raise ConfigError(f"src must be token ids [B, Ns]; got shape {tuple(src.shape)}")
    mask = src.eq(pad_id) if src_padding_mask is None else src_padding_mask.bool()
    memory = model.encode(src, mask)
    return memory, mask, (mask if mask.any() else None)


class Search:
    """A decoding strategy: the hypotheses being extended, one per decoder row, and what becomes of them each step.

    `limits` `[B]` are the sentences' most target tokens; `context` holds tensors of the batch, one row per sentence
    (the encoder's memory, its padding mask, the source ids; None for none), and `rows` the same tensors laid out per
    decoder row (`lay_out`), which the model reads. `generate` runs the loop; a strategy implements `advance` (choose
    the next tokens, end or drop hypotheses) and `result`. Sampling is `Greedy` with another `pick` (`Sample`).
    """

    tokens: Tensor  # [R, t]: each decoder row's tokens so far, BOS left out

    def __init__(self, limits: Tensor, context: tuple[Tensor | None, ...], *, eos_id: int, pad_id: int) -> None:
        self.limits, self.context, self.eos_id, self.pad_id = limits, context, eos_id, pad_id
        self.has_eos = eos_id >= 0

    def lay_out(self, sentences: Tensor) -> None:
        """Decoder row r decodes sentence `sentences[r]`: its rows of `context` and its length limit."""
        self.rows = tuple(None if t is None else t.index_select(0, sentences) for t in self.context)
        self.row_limits = self.limits.index_select(0, sentences)

    def advance(self, logp: Tensor, step: int) -> Tensor | None:
        """Take step `step` (0 first) given the next token's log-probabilities `logp` `[R, V]` (-inf: not allowed);
        return the decoder rows to keep, in their new order, or None when every row stays where it is."""
        raise NotImplementedError

    def result(self) -> Tensor:
        """The chosen tokens `[B, T]`: no BOS, EOS included, padded with pad_id after it."""
        raise NotImplementedError


class Greedy(Search):
    """The most probable next token (`pick`); a sentence leaves the batch once it ends (EOS, or without an end token
    its length limit)."""

    def __init__(self, limits: Tensor, context: tuple[Tensor | None, ...], *, eos_id: int, pad_id: int) -> None:
        super().__init__(limits, context, eos_id=eos_id, pad_id=pad_id)
        self.out = limits.new_full((limits.numel(), _longest(limits) + self.has_eos), pad_id)
        self.sentences = torch.arange(limits.numel(), device=limits.device)  # those still decoding
        if not self.has_eos:
            self.sentences = self.sentences[limits > 0]
        self.tokens = limits.new_zeros((self.sentences.numel(), 0))
        self.length = 0  # steps taken
        self.lay_out(self.sentences)

    def pick(self, logp: Tensor) -> Tensor:
        """Each row's next token `[R]` from its log-probabilities `[R, V]`."""
        return logp.argmax(dim=-1)

    def advance(self, logp: Tensor, step: int) -> Tensor | None:
        token = self.pick(logp)
        self.out[self.sentences, step] = token
        self.tokens = torch.cat([self.tokens, token[:, None]], dim=1)
        self.length = step + 1
        done = token.eq(self.eos_id) if self.has_eos else self.row_limits <= self.length
        if not done.any():
            return None
        keep = (~done).nonzero().squeeze(1)
        self.sentences, self.tokens = self.sentences[keep], self.tokens[keep]
        self.lay_out(self.sentences)
        return keep

    def result(self) -> Tensor:
        return self.out[:, : self.length]


class Sample(Greedy):
    """Greedy with a drawn next token: log-probabilities divided by `temperature` (0 = the most probable token), cut
    to the `top_k` most probable (0 = all) and to the smallest set whose probability reaches `top_p` (1 = all), then
    drawn from a generator seeded with `seed`, one draw per row and step (so cached and uncached decoding draw
    alike). `stream(tokens [R])`, when given, sees each step's tokens as they are chosen."""

    def __init__(
        self,
        limits: Tensor,
        context: tuple[Tensor | None, ...],
        *,
        eos_id: int,
        pad_id: int,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
        stream: Callable[[Tensor], None] | None = None,
    ) -> None:
        super().__init__(limits, context, eos_id=eos_id, pad_id=pad_id)
        self.temperature, self.top_k, self.top_p, self.stream = temperature, top_k, top_p, stream
        self.generator = torch.Generator(device=limits.device).manual_seed(seed)

    def pick(self, logp: Tensor) -> Tensor:
        if self.temperature == 0:
            token = logp.argmax(dim=-1)
        else:
            scores = logp / self.temperature
            if 0 < self.top_k < scores.shape[-1]:
                kth = scores.topk(self.top_k, dim=-1).values[:, -1:]
                scores = scores.masked_fill(scores < kth, NEG_INF)
            if self.top_p < 1.0:
                ordered, order = scores.sort(dim=-1, descending=True)
                probs = ordered.softmax(dim=-1)
                drop = probs.cumsum(dim=-1) - probs >= self.top_p  # the tokens above already hold top_p
                scores = scores.masked_fill(torch.empty_like(drop).scatter_(1, order, drop), NEG_INF)
            token = torch.multinomial(scores.softmax(dim=-1), 1, generator=self.generator).squeeze(1)
        if self.stream is not None:
            self.stream(token)
        return token


class BeamSearch(Search):
    """S active sentences with k alive hypotheses each, and the `beam` best finished ones of every sentence, scored
    log p(y|x) / len**length_penalty (see `beam_search`). Sentence s's hypotheses are decoder rows s·k … s·k + k - 1."""

    def __init__(
        self,
        limits: Tensor,
        context: tuple[Tensor | None, ...],
        *,
        eos_id: int,
        pad_id: int,
        beam: int,
        length_penalty: float,
    ) -> None:
        super().__init__(limits, context, eos_id=eos_id, pad_id=pad_id)
        self.beam, self.length_penalty = beam, length_penalty
        bsz, device = limits.numel(), limits.device
        self.width = _longest(limits) + self.has_eos  # longest output, EOS included
        self.fin_scores = torch.full((bsz, beam), NEG_INF, device=device)  # length-normalised
        self.fin_tokens = torch.full((bsz, beam, self.width), pad_id, dtype=torch.long, device=device)
        self.fin_lengths = torch.zeros(bsz, beam, dtype=torch.long, device=device)
        self.sent = torch.arange(bsz, device=device)  # active sentences
        self.hyps = torch.zeros(bsz, 1, 0, dtype=torch.long, device=device)  # [S, k, t]: one empty hypothesis
        self.scores = torch.zeros(bsz, 1, device=device)  # [S, k] summed log-probabilities
        if not self.has_eos:  # a sentence with a limit of 0 tokens is done before it starts
            keep = self._end_at_limit(self.sent, 0)
            self.sent, self.hyps, self.scores = self.sent[keep], self.hyps[keep], self.scores[keep]
        self._lay_out()

    @property
    def tokens(self) -> Tensor:
        return self.hyps.flatten(0, 1)

    def _lay_out(self) -> None:
        self.k_rows = self.hyps.shape[1]
        self.lay_out(self.sent.repeat_interleave(self.k_rows))

    def _finish(self, where: Tensor, scores: Tensor, tokens: Tensor, lengths: Tensor) -> None:
        """Offer finished hypotheses to active sentences `where` `[S']`: scores `[S', n]` raw, tokens `[S', n, t]`."""
        sent = self.sent[where]
        normalised = scores / lengths.clamp_min(1).double().pow(self.length_penalty).float()
        padded = torch.full((*tokens.shape[:2], self.width), self.pad_id, dtype=torch.long, device=tokens.device)
        padded[:, :, : tokens.shape[2]] = tokens
        all_scores = torch.cat([self.fin_scores[sent], normalised], dim=1)
        best, pos = all_scores.topk(self.beam, dim=1)
        self.fin_scores[sent] = best
        self.fin_tokens[sent] = torch.cat([self.fin_tokens[sent], padded], dim=1).gather(
            1, pos[:, :, None].expand(-1, -1, self.width)
        )
        self.fin_lengths[sent] = torch.cat([self.fin_lengths[sent], lengths], dim=1).gather(1, pos)

    def _end_at_limit(self, keep: Tensor, length: int) -> Tensor:
        """Without an end token hypotheses end at their sentence's limit: finish those of the active sentences `keep`
        `[S']` whose limit is `length` tokens or fewer; return the others."""
        ended = self.limits[self.sent[keep]] <= length
        if ended.any():
            where = keep[ended]
            lengths = torch.full_like(self.scores[where], length, dtype=torch.long)
            self._finish(where, self.scores[where], self.hyps[where], lengths)
        return keep[~ended]

    def advance(self, logp: Tensor, step: int) -> Tensor:
        s, k, t = self.hyps.shape
        beam, vocab = self.beam, logp.shape[-1]
        candidates = (self.scores[:, :, None] + logp.view(s, k, vocab)).view(s, k * vocab)
        top, index = candidates.topk(min(2 * beam, k * vocab), dim=1)  # sorted, best first
        origin, token = index // vocab, index % vocab
        is_eos = token.eq(self.eos_id) & top.isfinite() if self.has_eos else torch.zeros_like(token, dtype=torch.bool)
        ended = is_eos[:, :beam]  # an EOS among the beam best candidates ends a hypothesis
        if ended.any():
            where = ended.any(dim=1).nonzero().squeeze(1)
            n = ended.shape[1]
            scores = top[where, :n].masked_fill(~ended[where], NEG_INF)
            parents = self.hyps[where].gather(1, origin[where, :n, None].expand(-1, -1, t))
            tokens = torch.cat([parents, token[where, :n, None]], dim=2)
            self._finish(where, scores, tokens, torch.full_like(tokens[:, :, 0], t + 1))
        alive, pos = top.masked_fill(is_eos, NEG_INF).topk(min(beam, top.shape[1]), dim=1)
        origin, token = origin.gather(1, pos), token.gather(1, pos)
        self.hyps = torch.cat([self.hyps.gather(1, origin[:, :, None].expand(-1, -1, t)), token[:, :, None]], 2)
        self.scores = alive
        done = self.fin_scores[self.sent].isfinite().sum(dim=1) >= beam
        if self.has_eos:
            done |= self.limits[self.sent] <= step  # EOS was forced at this step
        keep = (~done).nonzero().squeeze(1)
        if not self.has_eos:
            keep = self._end_at_limit(keep, step + 1)
        # hypothesis j of kept sentence s comes from decoder row s·k + origin[s, j]
        rows = (keep[:, None] * self.k_rows + origin[keep]).flatten()
        changed = keep.numel() != self.sent.numel() or self.hyps.shape[1] != self.k_rows
        self.sent, self.hyps, self.scores = self.sent[keep], self.hyps[keep], self.scores[keep]
        if changed:
            self._lay_out()
        return rows

    def result(self) -> Tensor:
        best = self.fin_scores.argmax(dim=1)
        rows = torch.arange(best.numel(), device=best.device)
        tokens, lengths = self.fin_tokens[rows, best], self.fin_lengths[rows, best]
        return tokens[:, : _longest(lengths)]


def generate(
    model: nn.Module,
    src: Tensor,
    src_padding_mask: Tensor | None,
    strategy: Callable[..., Search],
    *,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    max_len_a: float,
    max_len_b: int,
    max_len: int | None,
    min_len: int,
    use_cache: bool,
    allowed: Constraint | None = None,
    **constraints: Any,
) -> Tensor:
    """The decoding loop of every strategy: encode src `[B, Ns]` once, then, until no hypothesis is left, feed each
    decoder row its newest token (or, without the cache, BOS and every token so far), constrain the next token's
    log-probabilities (`_next_log_probs`, with `constraints` and the tokens `allowed` permits) and let the strategy
    `advance`; the cache follows the rows it keeps. `strategy(limits, context, eos_id=, pad_id=)` makes the `Search`.
    Returns its `result()`."""
    _check_ids(model, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)
    with _inference(model):
        memory, mask, memory_mask = _prepare(model, src, src_padding_mask, pad_id)
        limits = max_lengths(model, mask, max_len_a=max_len_a, max_len_b=max_len_b, max_len=max_len, min_len=min_len)
        search = strategy(limits, (memory, memory_mask, src), eos_id=eos_id, pad_id=pad_id)
        cache: dict[Any, Any] | None = {} if use_cache else None
        step = 0
        while search.tokens.shape[0]:
            tokens = search.tokens
            prefix = torch.cat([tokens.new_full((tokens.shape[0], 1), bos_id), tokens], dim=1)
            tgt = prefix if cache is None else prefix[:, -1:]  # the cache holds the earlier positions
            rows_memory, rows_mask, rows_src = search.rows
            logits = _decode(model, tgt, rows_memory, rows_mask, cache, rows_src)[:, -1]
            logp = _next_log_probs(
                logits,
                tokens,
                search.row_limits,
                step=step,
                bos_id=bos_id,
                eos_id=eos_id,
                pad_id=pad_id,
                min_len=min_len,
                allowed=None if allowed is None else allowed(tokens, rows_src),
                **constraints,
            )
            keep = search.advance(logp, step)
            if cache is not None and keep is not None and keep.numel():
                model.reorder_cache(cache, keep)
            step += 1
        return search.result()


def greedy(
    model: nn.Module,
    src: Tensor,
    src_padding_mask: Tensor | None = None,
    *,
    bos_id: int,
    eos_id: int,
    pad_id: int = 0,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    max_len: int | None = None,
    min_len: int = 0,
    use_cache: bool = True,
    allowed: Constraint | None = None,
) -> Tensor:
    """The most probable next token at each step (among those `allowed` permits): src `[B, Ns]` -> tokens `[B, T]`
    (no BOS, pad after EOS)."""
    lengths = {"max_len_a": max_len_a, "max_len_b": max_len_b, "max_len": max_len, "min_len": min_len}
    ids = {"bos_id": bos_id, "eos_id": eos_id, "pad_id": pad_id}
    return generate(model, src, src_padding_mask, Greedy, **ids, **lengths, use_cache=use_cache, allowed=allowed)


def beam_search(
    model: nn.Module,
    src: Tensor,
    src_padding_mask: Tensor | None = None,
    *,
    bos_id: int,
    eos_id: int,
    pad_id: int = 0,
    beam: int = 5,
    length_penalty: float = 1.0,
    min_len: int = 0,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    max_len: int | None = None,
    no_repeat_ngram: int = 0,
    word_starts: Tensor | None = None,
    stutter_free: Tensor | None = None,
    repetition_penalty: float = 1.0,
    use_cache: bool = True,
    allowed: Constraint | None = None,
) -> Tensor:
    """Batched beam search: src `[B, Ns]` -> the best hypothesis per sentence `[B, T]` (no BOS, pad after EOS).

    The B · beam hypotheses decode as one batch. A hypothesis that ends (EOS among the step's `beam` best
    candidates) is kept with the score log p(y|x) / len**length_penalty (len counts EOS, as in fairseq); a sentence
    is done once it holds `beam` finished hypotheses or reaches its maximum length, and leaves the batch.
    `no_repeat_ngram` counts words when `word_starts` (`[V]` bool: the pieces that begin a word) is given, and a
    piece then never follows itself inside a word unless `stutter_free` (`[V]` bool, e.g. digits) marks it; else it
    counts tokens. `repetition_penalty` (1 = off) penalises tokens a hypothesis already holds; `allowed` (a
    `Constraint`, e.g. real words only) says which tokens each hypothesis may take.
    """
    if not isinstance(beam, int) or isinstance(beam, bool) or beam <= 0:
        raise ConfigError(f"beam={beam!r} must be a positive integer (1 = greedy)")
    if not isinstance(no_repeat_ngram, int) or no_repeat_ngram < 0:
        raise ConfigError(f"no_repeat_ngram={no_repeat_ngram!r} must be an integer >= 0 (0 = off)")
    if (
        isinstance(repetition_penalty, bool)
        or not isinstance(repetition_penalty, (int, float))
        or repetition_penalty <= 0
    ):
        raise ConfigError(f"repetition_penalty={repetition_penalty!r} must be a number > 0 (1 = off)")
    if word_starts is not None and (word_starts.dim() != 1 or word_starts.dtype != torch.bool):
        raise ConfigError(f"word_starts must be a [V] bool tensor; got {word_starts.dtype} {tuple(word_starts.shape)}")
    return generate(
        model,
        src,
        src_padding_mask,
        functools.partial(BeamSearch, beam=beam, length_penalty=length_penalty),
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        max_len_a=max_len_a,
        max_len_b=max_len_b,
        max_len=max_len,
        min_len=min_len,
        use_cache=use_cache,
        no_repeat_ngram=no_repeat_ngram,
        word_starts=word_starts,
        stutter_free=stutter_free,
        repetition_penalty=float(repetition_penalty),
        allowed=allowed,
    )


def sample(
    model: nn.Module,
    prompt: Tensor,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    seed: int = 0,
    eos_id: int = -1,
    use_cache: bool = True,
    stream: Callable[[Tensor], None] | None = None,
    allowed: Constraint | None = None,
) -> Tensor:
    """A decoder-only model's continuation of prompt `[B, Np]` (rows of one length): tokens `[B, T]`, T at most
    `max_new_tokens` (fewer once every row drew `eos_id`; negative = none), drawn by `Sample` in the one loop.

    The model (`attnkit.nn.Decoder`) reads the prompt as the loop's source; `repetition_penalty` (1 = off) penalises
    the tokens generated so far; `allowed` (a `Constraint`; its source is the prompt) limits the tokens drawn. Prompt
    and new tokens must fit the model's `max_len` positions."""
    checks = (
        ("max_new_tokens", max_new_tokens, isinstance(max_new_tokens, int) and max_new_tokens >= 1, "an integer >= 1"),
        ("temperature", temperature, isinstance(temperature, (int, float)) and temperature >= 0, "a number >= 0"),
        ("top_k", top_k, isinstance(top_k, int) and top_k >= 0, "an integer >= 0 (0 = off)"),
        ("top_p", top_p, isinstance(top_p, (int, float)) and 0 < top_p <= 1, "in (0, 1] (1 = off)"),
        (
            "repetition_penalty",
            repetition_penalty,
            isinstance(repetition_penalty, (int, float)) and repetition_penalty > 0,
            "a number > 0 (1 = off)",
        ),
        ("seed", seed, isinstance(seed, int), "an integer"),
    )
    for key, value, ok, what in checks:
        if not ok or isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} must be {what}")
    if prompt.dim() != 2 or prompt.shape[1] == 0:
        raise ConfigError(f"the prompt must be token ids [B, Np] with Np >= 1; got shape {tuple(prompt.shape)}")
    limit = getattr(model, "max_len", None)
    if limit is not None and prompt.shape[1] + max_new_tokens > limit:
        raise ConfigError(
            f"a prompt of {prompt.shape[1]} tokens and max_new_tokens={max_new_tokens} exceed the model's context "
            f"of {limit} positions; shorten the prompt (task.truncate=left cuts it from the left) or lower "
            f"max_new_tokens"
        )
    strategy = functools.partial(
        Sample, temperature=float(temperature), top_k=top_k, top_p=float(top_p), seed=seed, stream=stream
    )
    return generate(
        model,
        prompt,
        None,
        strategy,
        bos_id=-1,
        eos_id=eos_id,
        pad_id=-1,
        max_len_a=0.0,
        max_len_b=max_new_tokens,
        max_len=None,
        min_len=0,
        use_cache=use_cache,
        repetition_penalty=float(repetition_penalty),
        allowed=allowed,
    )


def sequence_log_prob(
    model: nn.Module,
    src: Tensor,
    tokens: Tensor,
    src_padding_mask: Tensor | None = None,
    *,
    bos_id: int,
    pad_id: int = 0,
    length_penalty: float = 0.0,
) -> Tensor:
    """Score of given outputs `tokens` `[B, T]` (as returned by the searches) under the model: `[B]`.

    Sum of log p(y_t | y_<t, x) over the tokens before the padding, divided by len**length_penalty.
    """
    with _inference(model):
        memory, _, memory_mask = _prepare(model, src, src_padding_mask, pad_id)
        tgt_in = torch.cat([tokens.new_full((tokens.shape[0], 1), bos_id), tokens[:, :-1]], dim=1)
        logp = torch.log_softmax(_decode(model, tgt_in, memory, memory_mask, None, src).float(), dim=-1)
        picked = logp.gather(2, tokens[:, :, None]).squeeze(2)
        real = tokens.ne(pad_id)
        lengths = real.sum(dim=1).clamp_min(1)
        return (picked * real).sum(dim=1) / lengths.double().pow(length_penalty).float()

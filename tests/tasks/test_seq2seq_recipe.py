"""The text tasks' data-size-aware recipe: what the rule picks for corpora of several sizes, and its one line."""

from __future__ import annotations

import pytest

from attnkit.tasks.seq2seq.recipe import describe, text_recipe, word_types


@pytest.mark.parametrize(
    ("pairs", "types", "batch", "expected"),
    [
        # 2,000 emails: small model, strong dropout, many short epochs validated every few, early stopping
        (2_000, 15_000, 128, {"dim": 128, "depth": 2, "dropout": 0.3, "max_epochs": 48, "vocab_size": 4000}),
        # the built-in match reports (8,000 pairs of a small vocabulary)
        (8_000, 2_600, 64, {"dim": 128, "depth": 2, "dropout": 0.1, "max_epochs": 6, "vocab_size": 1000}),
        # AESLC (14,436 emails)
        (14_436, 60_000, 128, {"dim": 256, "depth": 3, "dropout": 0.1, "max_epochs": 7, "vocab_size": 8000}),
        # a large corpus: few epochs
        (500_000, 300_000, 128, {"dim": 512, "depth": 6, "dropout": 0.1, "max_epochs": 4, "vocab_size": 8000}),
    ],
)
def test_the_rule_scales_with_the_corpus(pairs, types, batch, expected) -> None:
    recipe = text_recipe(pairs, types, batch, warmup_steps=300)
    assert {key: getattr(recipe, key) for key in expected} == expected
    steps = recipe.max_epochs * -(-pairs // batch)
    assert recipe.warmup_steps <= max(300, steps) and recipe.warmup_steps <= steps // 3
    assert recipe.max_epochs / recipe.check_val_every_n_epoch <= 12  # at most about 12 validations
    assert (recipe.patience is not None) == (recipe.max_epochs > 12)


def test_word_types_count_words_not_punctuation() -> None:
    assert word_types(["The cat, the CAT!", "a dog 42"], lowercase=True) == 5
    assert word_types(["The cat, the CAT!"], lowercase=False) == 4


def test_the_line_names_what_was_chosen_and_how_to_choose() -> None:
    recipe = text_recipe(2_000, 15_000, 128, warmup_steps=300)
    line = describe(recipe, ["model.dim", "trainer.max_epochs"])
    assert line.startswith("recipe: 2,000 training pairs, 15,000 word types -> width 128, 48 epochs (early stopping")
    assert "set model.dim / trainer.max_epochs to choose yourself" in line and "\n" not in line
    assert "dropout" not in line  # what the config set is not the rule's

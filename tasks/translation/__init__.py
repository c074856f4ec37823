"""Translation: the built-in `number_words` data, BLEU/chrF evaluation and the `translation` task (registered on
import, through the `attnkit.plugins` entry point)."""

from attnkit.tasks.translation import number_words, task  # noqa: F401  (registration)

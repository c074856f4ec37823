"""The data of a language-model task: a source whose `load()` gives `LMData`; any other is refused in one line."""

from __future__ import annotations

from typing import Any

from attnkit.errors import ConfigError
from attnkit.registry import build_spec
from attnkit.text.lm import LMData
from attnkit.text.pairs import TextPairData

# how data=text reads the files of a text-pair source, by the pair source's name
READ_AS_TEXT = {
    "text_files": "data=text data.path=<file or folder> data.field=<the text field>",
    "hf_text": "data=text data.dataset=<name> (or data.data_files=...) data.field=<the text field>",
}


def load_lm_data(data_cfg: Any, task: str = "lm") -> tuple[Any, LMData]:
    """The source `data_cfg` names and what it loads. A text-pair source (text_files, hf_text) is refused before it
    loads, with the data=text settings that read its files as one text; a source whose data is not LMData after."""
    source = build_spec("data", data_cfg)
    name = data_cfg.get("name") if hasattr(data_cfg, "get") else data_cfg
    if isinstance(source, TextPairData):
        how = READ_AS_TEXT.get(str(name), "data=text data.path=<a text file>")
        raise ConfigError(f"data={name} gives text pairs, not the one text task={task} models; read it with {how}")
    data = source.load()
    if not isinstance(data, LMData):
        raise ConfigError(
            f"data={name} does not give a language model's data (attnkit.text.lm.LMData), which task={task} needs; "
            f"choose data=mqar or data=text"
        )
    return source, data

"""What every data source of any task shares, one concept per module; importing this package imports nothing.

- `paths`: user paths resolved against the launch directory (the CLI does not chdir).
- `splits`: the split names (train, val, test), their usual aliases, and which split of a loaded data set to use.
- `checks`: option checks (`check_int`, `check_choice`, `check_fractions`) that fail with one-line ConfigErrors.
- `messages`: an exception's message on one line, for errors that quote another library's.
- `warning`: `DataWarning`, a flaw in the data that a source repaired and counted; `warn` issues one and
  `reported_warnings` prints them as `warning: ...` lines.
- `hf`: loading a Hugging Face dataset (hub name or local builder) with every failure said in one line.

Heavy libraries (`datasets`) are imported only inside the functions that need them: `python -m attnkit --help`
stays fast.
"""

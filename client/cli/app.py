"""The ``hub`` Typer application object. Command modules register on it; each imports heavy
libraries (torch, diffusers) inside its functions so that ``hub --help`` starts fast."""

import typer

app = typer.Typer(
    name="hub",
    help="Lexicon Hub: push, pull, inspect and convert textual-inversion embeddings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich help imports rich.markdown and markdown_it (~0.2 s of
    # every `hub --help`, issue 12); our help strings use no markup.
    rich_markup_mode=None,
)

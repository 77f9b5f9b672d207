"""``python -m deconfliction``: the ``deconflict`` command, wherever its script was installed."""

from deconfliction.cli import app

app(prog_name="deconflict")

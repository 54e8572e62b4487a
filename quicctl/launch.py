"""The ``quicctl`` console script: the command line when the ``cli`` extra is installed, else
one line saying how to install it (exit 1)."""

from __future__ import annotations

import importlib.util
import sys

# Modules of the cli extra (pyproject.toml) and the distributions that provide them.
CLI_EXTRA = {"click": "click", "rich": "rich", "pyroute2": "pyroute2", "virtme_ng": "virtme-ng"}


def missing() -> list[str]:
    """The distributions of the cli extra that are not installed."""
    return [dist for mod, dist in CLI_EXTRA.items() if importlib.util.find_spec(mod) is None]


def main() -> None:
    absent = missing()
    if absent:
        sys.stderr.write(
            f"quicctl: the command line needs the cli extra ({', '.join(absent)} missing): "
            "pip install 'quicctl[cli]'\n"
        )
        sys.exit(1)
    from quicctl.cli import main as cli

    cli()


if __name__ == "__main__":
    main()

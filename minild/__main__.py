"""__main__: the `minild` command's entry point (the console script, python -m minild).

A link runs with the cyclic garbage collector off (cli.link_cmd says why).
Turned off here, before click, msgspec and the rest are imported, it also
spares the collector's scans of the objects those imports leave behind,
without changing anything for a program that only imports minild.cli
(measured: docs/performance.md, 'Figures behind the code').
"""

import gc
import sys


def main() -> None:
    if sys.argv[1:2] == ["link"]:
        gc.disable()
    from .cli import main as cli

    cli()


if __name__ == "__main__":
    main()

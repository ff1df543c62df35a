"""The `cardflow` command: parse (mlproject/parser.py), build the context once, run the subcommand's one
library call, and turn errors into exit codes through the one error table (common/errors.py).

Every subcommand has --help. An error CardFlow raises on purpose is printed as one line naming the file,
field, parameter or URI, with its category's exit status (2 bad input / not found / conflict, 4 unavailable
or overloaded: try again); a refused gate exits 3; Ctrl-C exits 130; anything else is a bug: exit 1, one
line, the traceback with -v.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

from common.errors import EXIT_INTERRUPTED, CardflowError, outcome
from mlproject.parser import build_parser

log = logging.getLogger("cardflow")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        # The context (catalog, spec) is imported only to run a command: --help stays quick.
        return args.run(args, importlib.import_module("mlproject.context").Context())
    except CardflowError as exc:
        print(f"cardflow: error: {exc}", file=sys.stderr)
        return outcome(exc).exit_code
    except KeyboardInterrupt:
        print("cardflow: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 — a bug, not bad input: say so in one line, trace on -v
        log.debug("unexpected error", exc_info=True)
        print(f"cardflow: internal error: {type(exc).__name__}: {exc} (run with -v for the traceback; "
              "please report it)", file=sys.stderr)
        return outcome(exc).exit_code


if __name__ == "__main__":
    sys.exit(main())

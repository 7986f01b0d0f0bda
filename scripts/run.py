"""`make run`: with a file argument, the command-line intake; otherwise the whole platform.

make run ARGS="path/to/voice.mp3"            # validate + embed one file, print report and hash
make run ARGS="db=postgres queue=redis"      # the platform with Hydra overrides
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if argv and Path(argv[0]).is_file():
        from scripts.intake import main as intake_main

        return intake_main(argv)
    from scripts.platform import main as platform_main

    return platform_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

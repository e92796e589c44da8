#!/usr/bin/env python3
"""Run the JobJoker server from a checkout: ``python run_server.py [options]``.

The same as ``jobjoker serve [options]``; see ``--help``.
"""
import sys

from jobjoker.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))

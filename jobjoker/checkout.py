"""Running from a source checkout: where it is, and the folders that join the package there.

Contract: ``ROOT`` is the checkout's top folder (a ``str``) when this package runs from one
(``run_server.py`` beside ``jobjoker/``), else None: the package is installed. In a checkout,
``install_finder()`` makes ``jobjoker.handlers`` and ``jobjoker.static`` importable from the
top-level ``handlers/`` and ``static/`` folders, which is where an installed package has them
already (``setup.py`` maps them there); installed, it does nothing. Nothing happens at import
time. Standard library only, and cheap: every job process imports the package.
"""
import os
import sys

_TOP = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
ROOT = _TOP if os.path.isfile(os.path.join(_TOP, "run_server.py")) else None

# The subpackages whose folders sit at the top of a checkout; setup.py's package_dir maps the
# same names.
FOLDERS = ("handlers", "static")


class CheckoutFinder:
    """An import finder for exactly ``jobjoker.<folder>`` of ``FOLDERS``, from the checkout.

    Not the checkout's root on ``jobjoker.__path__``: that would also make ``jobjoker.tests``,
    ``jobjoker.bench``, ``jobjoker.run_server`` and a second ``jobjoker.jobjoker`` importable.
    The submodules of a found package are then found through its own ``__path__``, as usual.
    """

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        parent, _, name = fullname.rpartition(".")
        if parent != "jobjoker" or name not in FOLDERS:
            return None
        from importlib.machinery import PathFinder  # only when the server imports these
        return PathFinder.find_spec(fullname, [ROOT])


def install_finder():
    """In a checkout, let ``jobjoker.handlers`` and ``jobjoker.static`` be imported."""
    # Appended: whatever finds them first (an editable install's own finder) finds the same
    # folders.
    if ROOT is not None and CheckoutFinder not in sys.meta_path:
        sys.meta_path.append(CheckoutFinder)

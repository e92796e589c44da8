"""JobJoker: a self-hosted job runner. Workers import ``Worker`` from here.

Importing this package must stay cheap: job processes import it, so it pulls in nothing but the
worker API (no Tornado, no Peewee) and, in a source checkout, a finder for ``handlers/`` and
``static/`` (see ``jobjoker.checkout``).
"""
from jobjoker import checkout
from jobjoker.worker import Worker

__version__ = "0.1.0"
__all__ = ["Worker", "__version__"]

# The repository keeps handlers/ and static/ beside this package, an installed copy inside it
# (setup.py maps them to jobjoker.handlers and jobjoker.static): in a checkout, join them here so
# that both are imported by the same names.
checkout.install_finder()

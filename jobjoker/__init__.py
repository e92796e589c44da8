"""JobJoker: a self-hosted job runner. Workers import ``Worker`` from here.

Importing this package must stay cheap: job processes import it, so it pulls in nothing but the
worker API (no Tornado, no Peewee).
"""
from jobjoker.worker import Worker

__version__ = "0.1.0"
__all__ = ["Worker", "__version__"]

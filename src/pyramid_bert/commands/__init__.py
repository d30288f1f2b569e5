"""Sub-commands of the ``pyramid-bert`` CLI, one module each (see :mod:`pyramid_bert.cli`)."""

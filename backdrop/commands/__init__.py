"""The ``backdrop`` subcommands, one module each, named after the command: ``run``, ``serve``, ``devices``,
``model``, ``train``, ``eval``, ``distill``, ``bench``.

Each exposes ``register(subparsers)``, which adds its parser and sets ``handler`` to its ``run(args)`` (``model``
has one handler per sub-subcommand). Heavy imports happen inside the handlers. ``arguments`` and ``progress``
are helpers the commands share.
"""

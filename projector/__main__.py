"""``python -m projector``: the same as the ``projector`` command."""

from projector.cli import main

if __name__ == "__main__":
    main()

"""``python -m orders_api``: the same as the ``orders-api`` console script."""

from orders_api.cli import main

if __name__ == "__main__":
    main()

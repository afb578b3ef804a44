"""``python -m wandb_dagster``: the ``wandb-dagster`` command line."""

if __name__ == "__main__":
    from wandb_dagster.cli import main

    main()

"""``python -m es_zoo`` (what ``accelerate launch -m es_zoo`` runs)."""

from es_zoo.cli import main

if __name__ == "__main__":
    main()

"""trakr-spike (not implemented yet)."""

from __future__ import annotations

from trakr.cli import not_implemented


def main() -> None:
    not_implemented("trakr-spike")


if __name__ == "__main__":
    main()

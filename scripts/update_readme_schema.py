"""Rewrite the feature-table schema section of README.md from tiktok_assets.lib.table.schema."""

from pathlib import Path

from tiktok_assets.lib.table.schema import markdown_table

START, END = "<!-- schema:start -->", "<!-- schema:end -->"


def main() -> None:
    readme = Path(__file__).parents[1] / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{markdown_table()}\n{END}{tail}")


if __name__ == "__main__":
    main()

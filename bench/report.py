"""The Markdown table every bench prints its figures as."""


def print_table(headers: list[str], rows, text_columns: int = 1) -> None:
    """rows: cells already formatted. The first `text_columns` columns are left-aligned names, the
    rest right-aligned figures."""
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * text_columns + "---:|" * (len(headers) - text_columns))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")

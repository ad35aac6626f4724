"""The manual, readable in the browser: the README at /readme (the page's "New here?" link opens it
in a new tab, so the drawing stays), the pages it links to at the same relative paths (docs/*.md,
CHANGELOG.md, docs/images/), and the README's markdown source at /readme.md.

Only the files of the manual are served, looked up by name: no path from a request reaches the
file system. A copy installed without them (pip install .) says so instead.
"""
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse

PROJECT = Path(__file__).resolve().parents[2]
README = PROJECT / "README.md"
DOCS = PROJECT / "docs"
IMAGES = DOCS / "images"
NOT_INSTALLED = "is not installed with this copy of tinyzoo: read it in the source repository"
PAGE_STYLE = ("body{max-width:52em;margin:2em auto;padding:0 1em;font:16px/1.5 system-ui,sans-serif}"
              "pre,table{display:block;overflow-x:auto}td,th{border:1px solid #ddd;padding:2px 6px}"
              "code{background:#f4f4f4}img{max-width:100%}")


def manual_pages() -> dict[str, Path]:
    """URL path -> markdown file: the README's own links are relative to /readme, the docs' to /docs/."""
    pages = {"/readme": README, "/README.md": README, "/CHANGELOG.md": PROJECT / "CHANGELOG.md"}
    pages.update({f"/docs/{page.name}": page for page in sorted(DOCS.glob("*.md"))})
    return pages


def page_html(path: Path) -> str:
    """A markdown file as HTML (markdown-it, which Gradio brings; raw HTML in the markdown is escaped)."""
    from markdown_it import MarkdownIt

    title = path.stem
    if path.exists():
        markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
        markdown.core.ruler.push("heading_ids", heading_ids)
        body = markdown.render(path.read_text(encoding="utf-8"))
    else:
        body = f"<p>{path.name} {NOT_INSTALLED}</p>"
    return (f"<!doctype html><html lang=en><meta charset=utf-8><title>tinyzoo: {title}</title>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'><style>{PAGE_STYLE}</style>"
            f"<body>{body}</body></html>")


def heading_ids(state) -> None:
    """Each heading gets the id GitHub gives it, which the manual's links name (`#the-models`):
    lower case, punctuation dropped, a hyphen for each space; a repeated one gets -1, -2, ..."""
    seen = {}
    for opening, inline in zip(state.tokens, state.tokens[1:]):
        if opening.type == "heading_open":
            slug = re.sub(r"[^\w\- ]", "", inline.content.strip().lower()).replace(" ", "-")
            opening.attrSet("id", f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1


def add_manual_routes(api: FastAPI) -> None:
    for url, path in manual_pages().items():
        api.add_api_route(url, lambda path=path: HTMLResponse(page_html(path)), methods=["GET"],
                          include_in_schema=False)

    @api.get("/readme.md", response_class=PlainTextResponse, include_in_schema=False)
    def readme_markdown():
        return README.read_text(encoding="utf-8") if README.exists() else f"README.md {NOT_INSTALLED}"

    images = {image.name: image for image in IMAGES.glob("*.png")}

    @api.get("/docs/images/{name}", include_in_schema=False)
    def image(name: str):
        if name not in images:
            return PlainTextResponse(f"no picture {name!r} in the manual", status_code=404)
        return FileResponse(images[name], media_type="image/png")

"""What the template endpoint renders, the same for every app: a layout, a loop
and a value that must be escaped."""

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"

PAGE = {
    "title": "Products",
    "shop": "Bench & Co",
    "notice": "<script>alert('escaped')</script>",
    "products": [{"name": f"Product <{i}>", "price": f"{i * 1.25:.2f}"} for i in range(10)],
}

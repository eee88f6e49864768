"""Check the links to repository files: those of README.md, results/, benchmarks/, examples/, and docs/'s links out.

``mkdocs build --strict`` validates the links between pages of docs/; this script validates the rest: links from the
README and the results pages to each other and to repository files, and the repository-rooted links of docs/
(``/results/README.md``, which MkDocs leaves alone), so that moving a file cannot leave a dead link.
External links (http, https, mailto) are not fetched: CI has no network. Run by ``make docs``::

    python docs/check_links.py            # prints each dead link as FILE:LINE: TARGET, exits 1 if there is one
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Markdown files whose links are checked here (docs/ itself is checked by mkdocs --strict)
GLOBS = ("README.md", "results/**/*.md", "benchmarks/**/*.md", "examples/**/*.md", "gym_dream/**/*.md", "trainers/**/*.md",
         "docs/**/*.md")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE = re.compile(r"```.*?```", re.S)


def dead_links(path: Path) -> list[tuple[int, str]]:
    """``(line, target)`` of each link in ``path`` to a file that does not exist: relative links (except between pages
    of docs/, which mkdocs checks) and repository-rooted ones (``/results/...``)."""
    in_docs = path.is_relative_to(ROOT / "docs")
    text = CODE.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text(encoding="utf-8"))
    dead = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL (not fetched) or an anchor in the same page
            file = target.split("#", 1)[0]
            if file.startswith("/"):
                where = ROOT / file.lstrip("/")
            elif in_docs:
                continue  # a link between pages of the site: mkdocs build --strict checks it
            else:
                where = path.parent / file
            if not where.exists():
                dead.append((lineno, target))
    return dead


def main(argv: list[str] | None = None) -> int:
    files = sorted({p for g in GLOBS for p in ROOT.glob(g) if ".venv" not in p.parts})
    bad = [(p, n, t) for p in files for n, t in dead_links(p)]
    for p, n, t in bad:
        print(f"{p.relative_to(ROOT)}:{n}: dead link {t}", file=sys.stderr)
    print(f"check_links: {len(files)} files, {len(bad)} dead links")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

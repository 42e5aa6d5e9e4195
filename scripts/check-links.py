#!/usr/bin/env python3
"""Checks the relative links of the documentation (what scripts/test.sh runs).

For README.md, ARCHITECTURE.md, CHANGELOG.md and every page of the book (docs/book/src/):
every relative link or image points at a file or folder that exists, and a link with a
`#anchor` into a Markdown file names one of that file's headings (ids as GitHub and mdBook
make them: lower case, spaces to hyphens, punctuation dropped, `-1`, `-2`, … for repeats).
Also: every page of the book is listed in its SUMMARY.md (an unlisted page is never built).
Links inside code (fenced blocks and `spans`) and to other sites (http:, https:, mailto:) are
not checked. Exit status 1, with one line per broken link, if any is broken.

Python 3 standard library only. Run from anywhere: python3 scripts/check-links.py
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOK = os.path.join(ROOT, "docs", "book", "src")

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text):
    """(line number, line) of the text outside fenced code blocks, code spans blanked."""
    fenced = False
    for n, line in enumerate(text.split("\n"), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, CODE_SPAN.sub("code", line)


def heading_text(raw):
    """A heading's text as rendered: code spans kept as text, links as their text, no emphasis."""
    text = re.sub(r"(`+)(.+?)\1", lambda m: m.group(2), raw)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[*]", "", text)


def slug(text):
    out = []
    for ch in text.strip().lower():
        if ch.isalnum() or ch in "-_":
            out.append(ch)
        elif ch.isspace():
            out.append("-")
    return "".join(out)


_anchors = {}


def anchors(path):
    """The heading ids of the Markdown file at `path`."""
    if path not in _anchors:
        ids, seen = set(), {}
        fenced = False
        with open(path, encoding="utf-8") as f:
            for line in f:
                if FENCE.match(line):
                    fenced = not fenced
                    continue
                m = None if fenced else HEADING.match(line.rstrip("\n"))
                if m:
                    base = slug(heading_text(m.group(2)))
                    k = seen.get(base, 0)
                    seen[base] = k + 1
                    ids.add(base if k == 0 else f"{base}-{k}")
        _anchors[path] = ids
    return _anchors[path]


def targets(text):
    for n, line in prose_lines(text):
        for m in INLINE_LINK.finditer(line):
            yield n, m.group(2)
        m = REF_DEF.match(line)
        if m:
            yield n, m.group(1)


def check(path, errors):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    rel = os.path.relpath(path, ROOT)
    for n, target in targets(text):
        if not target or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = path if not file_part else os.path.normpath(
            os.path.join(os.path.dirname(path), file_part.split("?")[0]))
        if not os.path.exists(dest):
            errors.append(f"{rel}:{n}: {target}: no such file ({os.path.relpath(dest, ROOT)})")
            continue
        if anchor and dest.endswith(".md") and anchor not in anchors(dest):
            errors.append(f"{rel}:{n}: {target}: no heading with the id #{anchor} "
                          f"in {os.path.relpath(dest, ROOT)}")


def book_pages():
    pages = []
    for folder, _, files in os.walk(BOOK):
        pages += [os.path.join(folder, f) for f in files if f.endswith(".md")]
    return sorted(pages)


def main():
    errors = []
    files = [os.path.join(ROOT, f) for f in ("README.md", "ARCHITECTURE.md", "CHANGELOG.md")]
    pages = book_pages()
    for path in files + pages:
        if os.path.exists(path):
            check(path, errors)
        else:
            errors.append(f"{os.path.relpath(path, ROOT)}: missing")
    summary = os.path.join(BOOK, "SUMMARY.md")
    with open(summary, encoding="utf-8") as f:
        listed = {os.path.normpath(os.path.join(BOOK, t.partition("#")[0]))
                  for _, t in targets(f.read())}
    for page in pages:
        if page != summary and page not in listed:
            errors.append(f"{os.path.relpath(page, ROOT)}: not listed in docs/book/src/SUMMARY.md")
    for e in errors:
        print(e, file=sys.stderr)
    checked = len(files) + len(pages)
    if errors:
        print(f"check-links: {len(errors)} broken link(s) in {checked} files", file=sys.stderr)
        return 1
    print(f"check-links: the links of {checked} files are fine")
    return 0


if __name__ == "__main__":
    sys.exit(main())

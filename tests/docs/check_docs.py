#!/usr/bin/env python3
"""The repository explains itself: docs/reference.md lists every config key
of the schema and every subcommand of the binary, relative links in Markdown
resolve, every docs/*.md a file names exists, and nothing points to a
document outside the repository.

usage: check_docs.py SOURCE_DIR [SATORU_BINARY]
Prints one line per problem (file:line: what) and exits 1 if there is any.
"""
import json
import os
import re
import subprocess
import sys

root = os.path.abspath(sys.argv[1])
binary = sys.argv[2] if len(sys.argv) > 2 else None
problems = []
this_file = os.path.relpath(os.path.abspath(__file__), root)


def tracked_files():
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-co", "--exclude-standard"],
                             capture_output=True, text=True, check=True).stdout
        return [f for f in out.splitlines() if os.path.isfile(os.path.join(root, f))]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d, dirs, names in os.walk(root):
            dirs[:] = [x for x in dirs if not x.startswith(("build", "."))]
            files += [os.path.relpath(os.path.join(d, n), root) for n in names]
        return files


def read(rel):
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
        return f.read()


files = [f for f in tracked_files() if f != this_file]
text_files = [f for f in files
              if not f.endswith((".png", ".jpg", ".db", ".gz", ".deb"))]

# 1. Nothing refers to a document outside the repository (the design notes
#    the project started from, a shared folder beside the checkout).
outside = re.compile(r"DESIGN\.md|\bDESIGN\b|\.\./shared\b|/work/shared|caf-0\.17\.md")
for f in text_files:
    for n, line in enumerate(read(f).splitlines(), 1):
        if outside.search(line):
            problems.append(f"{f}:{n}: refers to a document outside the repository: "
                            f"{line.strip()[:100]}")

# 2. Relative Markdown links resolve.
link = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
for f in text_files:
    if not f.endswith(".md"):
        continue
    for n, line in enumerate(read(f).splitlines(), 1):
        for target in link.findall(line):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = os.path.normpath(os.path.join(os.path.dirname(f), target.split("#")[0]))
            if not os.path.exists(os.path.join(root, path)):
                problems.append(f"{f}:{n}: link to a missing file: {target}")

# 3. Every docs/<name>.md named anywhere exists.
named_doc = re.compile(r"\bdocs/([A-Za-z0-9_-]+\.md)")
for f in text_files:
    for n, line in enumerate(read(f).splitlines(), 1):
        for doc in named_doc.findall(line):
            if not os.path.isfile(os.path.join(root, "docs", doc)):
                problems.append(f"{f}:{n}: names docs/{doc}, which does not exist")

# 4. Every config key of the schema is in the reference.
reference = read("docs/reference.md")
schema = json.loads(read("config/satoru.schema.json"))
keys = set(schema["properties"])
keys |= set(schema["properties"]["restic_retention_policy"].get("properties", {}))
for name in ("ssh", "site", "target"):
    keys |= set(schema["$defs"][name]["properties"])
for key in sorted(keys):
    if f"`{key}`" not in reference:
        problems.append(f"docs/reference.md: config key `{key}` of "
                        "config/satoru.schema.json is not documented")

# 5. Every subcommand of the binary is in the reference.
if binary:
    out = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    in_commands = False
    for line in out.splitlines():
        if line.strip().upper().startswith("SUBCOMMANDS"):
            in_commands = True
            continue
        if in_commands:
            m = re.match(r"^\s+([a-z][a-z-]*)\s", line)
            if not m:
                if line.strip() == "" or not line.startswith(" "):
                    in_commands = line.strip() == "" and in_commands
                continue
            if f"`satoru {m.group(1)}" not in reference:
                problems.append(f"docs/reference.md: command `satoru {m.group(1)}` "
                                "is not documented")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)

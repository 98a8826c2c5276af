#!/usr/bin/env python3
"""Deterministic data for bench/pipeline_bench.sh (same seed, same bytes).

  gen_dataset.py dir PATH SEED [FILES] [MIB]   FILES files (default 1,000) of about
                                               MIB MiB in total (default 100), in
                                               10 subfolders; even files random
                                               (incompressible), odd ones text
                                               (gzip -1 shrinks them ~3x)
  gen_dataset.py db PATH SEED [ROWS]           SQLite database of ROWS rows
                                               (default 25,600) of ~2 KB: half text,
                                               half random bytes (~50 MB)
  gen_dataset.py change PATH MODE SEED [PCT]   changes PCT % (default 1) of the rows:
                                               MODE clustered (consecutive ids),
                                               appended (new rows at the end) or
                                               scattered (random ids)
  gen_dataset.py fleet ROOT N [FILES] [KIB] [ROWS]
                                               N sites for bench/fleet_bench.sh:
                                               ROOT/site-0001/files/ with FILES files
                                               (default 20) of KIB KiB in all (default
                                               256) and ROOT/site-0001/app.db of ROWS
                                               rows (default 200, ~0.4 MB); sites that
                                               exist already are kept
"""

import os
import random
import sqlite3
import sys

# ~1 KB of text + ~1 KB of random bytes per row: the mix docs/benchmarks.md measures.
TEXT_BYTES = 1000
BLOB_BYTES = 1000


def vocabulary(rng, words=2000):
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(words)]


def line_pool(rng, lines=4096):
    """Lines of words: text that compresses like logs or JSON documents do."""
    vocab = vocabulary(rng)
    return [" ".join(rng.choices(vocab, k=rng.randint(6, 16))) + "\n" for _ in range(lines)]


def text(rng, pool, size):
    out = []
    n = 0
    while n < size:
        line = rng.choice(pool)
        out.append(line)
        n += len(line)
    return "".join(out)[:size]


def make_dir(path, seed, files=1000, mib=100, pool=None, subdirs=10):
    rng = random.Random(seed)
    pool = pool or line_pool(rng)
    want = int(mib * 1024 * 1024)
    mean = want // files
    # Sizes spread from ~8 % to ~192 % of the mean, scaled to the exact total.
    sizes = [rng.randint(mean * 8 // 100, mean * 192 // 100) for _ in range(files)]
    scale = want / sum(sizes)
    sizes = [max(1, int(x * scale)) for x in sizes]
    sizes[-1] += want - sum(sizes)
    total = 0
    for i, size in enumerate(sizes):
        sub = os.path.join(path, f"d{i % subdirs:02d}")
        os.makedirs(sub, exist_ok=True)
        total += size
        name = os.path.join(sub, f"f{i:04d}.{'bin' if i % 2 == 0 else 'txt'}")
        with open(name, "wb") as f:
            if i % 2 == 0:
                f.write(rng.randbytes(size))
            else:
                f.write(text(rng, pool, size).encode())
    print(f"{path}: {files} files, {total} bytes")


def row(rng, pool):
    return (text(rng, pool, TEXT_BYTES), rng.randbytes(BLOB_BYTES))


def make_db(path, seed, rows=25600, pool=None):
    if os.path.exists(path):
        os.remove(path)
    rng = random.Random(seed)
    pool = pool or line_pool(rng)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, rev INTEGER NOT NULL, "
               "body TEXT NOT NULL, data BLOB NOT NULL)")
    with db:
        db.executemany("INSERT INTO items (id, rev, body, data) VALUES (?, 0, ?, ?)",
                       ((i + 1,) + row(rng, pool) for i in range(rows)))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print(f"{path}: {rows} rows, {os.path.getsize(path)} bytes")


def change(path, mode, seed, pct=1.0):
    rng = random.Random(f"{seed}-{mode}")
    pool = line_pool(random.Random(seed))
    db = sqlite3.connect(path)
    count, last = db.execute("SELECT COUNT(*), MAX(id) FROM items").fetchone()
    n = max(1, int(count * pct / 100))
    with db:
        if mode == "appended":
            db.executemany("INSERT INTO items (id, rev, body, data) VALUES (?, 0, ?, ?)",
                           ((last + 1 + i,) + row(rng, pool) for i in range(n)))
        else:
            if mode == "clustered":
                start = rng.randint(1, max(1, last - n))
                ids = range(start, start + n)
            elif mode == "scattered":
                ids = rng.sample(range(1, last + 1), n)
            else:
                sys.exit(f"unknown change mode {mode}")
            db.executemany("UPDATE items SET rev = rev + 1, body = ?, data = ? WHERE id = ?",
                           (row(rng, pool) + (i,) for i in ids))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print(f"{path}: {mode} change of {n} rows")


def make_fleet(root, n, files=20, kib=256, rows=200):
    pool = line_pool(random.Random("satoru-fleet"))  # one text pool for all sites
    made = 0
    for i in range(1, n + 1):
        site = os.path.join(root, f"site-{i:04d}")
        if os.path.exists(os.path.join(site, "done")):
            continue
        make_dir(os.path.join(site, "files"), f"satoru-fleet-{i}-dir", files, kib / 1024,
                 pool=pool, subdirs=2)
        make_db(os.path.join(site, "app.db"), f"satoru-fleet-{i}-db", rows, pool=pool)
        open(os.path.join(site, "done"), "w").close()
        made += 1
    print(f"{root}: {n} sites ({made} new)")


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    kind = argv[1]
    if kind == "dir":
        make_dir(argv[2], argv[3], *(int(x) for x in argv[4:6]))
    elif kind == "db":
        make_db(argv[2], argv[3], *(int(x) for x in argv[4:5]))
    elif kind == "fleet":
        make_fleet(argv[2], int(argv[3]), *(int(x) for x in argv[4:7]))
    elif kind == "change" and len(argv) >= 5:
        change(argv[2], argv[3], argv[4], *(float(x) for x in argv[5:6]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

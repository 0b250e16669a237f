#!/usr/bin/env python3
"""The database's own floor under the rights-code check, on SQLite.

Runs, on a copy of a filled archive, the statements one granted check runs (the same
reads, updates and insert, in one immediate transaction each, as `services::waivers::
check` does) from a single connection with its statements prepared once, and nothing
else: no HTTP, no token, no code to open, no JSON. It prints how many such
transactions a second one writer gets through. SQLite has one writer at a time, so no
server on this database can grant more checks a second than this.

Usage: check_floor.py DB_COPY N    (the copy is written to; N checks)
Output: one line `FLOOR checks=N seconds=S per_second=R`.
"""

import os
import sqlite3
import sys
import time
import uuid


def main() -> None:
    path, n = sys.argv[1], int(sys.argv[2])
    db = sqlite3.connect(path, isolation_level=None, cached_statements=256)
    # What every server connection sets (db::SqlitePragmas).
    db.execute("PRAGMA busy_timeout = 5000")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA journal_mode = WAL")

    provider, checker = db.execute(
        "SELECT o.id, u.id FROM organizations o JOIN users u ON u.organization_id = o.id "
        "WHERE o.kind = 'provider' AND o.provider_kind = 'hotel' LIMIT 1"
    ).fetchone()
    issued_to = db.execute("SELECT id FROM users LIMIT 1").fetchone()[0]
    subjects = [
        r[0]
        for r in db.execute(
            "SELECT id FROM credit_subjects WHERE serious_dishonesty_count = 0 "
            "ORDER BY random() LIMIT ?",
            (n,),
        )
    ]
    # The codes the checks use, written first and not timed (issuing is its own load).
    codes = []
    db.execute("BEGIN IMMEDIATE")
    for subject in subjects:
        code = os.urandom(16).hex()
        db.execute(
            "INSERT INTO credit_rights_codes (id, subject_id, issued_to, provider_id, "
            "issued_at, expires_at) VALUES (?, ?, ?, NULL, '2026-12-03 00:00:00', "
            "'2026-12-04 00:00:00')",
            (code, subject, issued_to),
        )
        codes.append(code)
    db.execute("COMMIT")

    matter, amount, at = "hotel_room", 1, "2026-12-03 12:00:00.000000"
    started = time.perf_counter()
    for code in codes:
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "SELECT path, required_level, subject_kind, deposit_ceiling_fen FROM matters "
            "WHERE code = ? LIMIT ?",
            (matter, 1),
        ).fetchone()
        subject = db.execute(
            "SELECT subject_id, provider_id, used_at FROM credit_rights_codes "
            "WHERE id = ? LIMIT ?",
            (code, 1),
        ).fetchone()[0]
        db.execute(
            "SELECT provider_kind FROM organizations WHERE id = ? LIMIT ?", (provider, 1)
        ).fetchone()
        if db.execute(
            "SELECT COUNT(*) FROM credit_lines WHERE subject_id = ?", (subject,)
        ).fetchone()[0] == 0:
            db.execute(
                "INSERT INTO credit_lines (subject_id, in_use_fen, defaults_open, version) "
                "VALUES (?, 0, 0, 1)",
                (subject,),
            )
        db.execute(
            "UPDATE credit_lines SET version = version + 1 WHERE subject_id = ?", (subject,)
        )
        db.execute(
            "SELECT in_use_fen, defaults_open FROM credit_lines WHERE subject_id = ? LIMIT ?",
            (subject, 1),
        ).fetchone()
        db.execute(
            "SELECT in_use_fen FROM credit_line_matters WHERE subject_id = ? AND matter = ? "
            "LIMIT ?",
            (subject, matter, 1),
        ).fetchone()
        db.execute(
            "SELECT * FROM credit_subjects WHERE id = ? LIMIT ?", (subject, 1)
        ).fetchone()
        db.execute(
            "UPDATE credit_rights_codes SET used_at = ?, used_by = ?, outcome = 'granted' "
            "WHERE id = ? AND used_at IS NULL",
            (at, provider, code),
        )
        db.execute(
            "UPDATE credit_lines SET in_use_fen = in_use_fen + ? WHERE subject_id = ?",
            (amount, subject),
        )
        moved = db.execute(
            "UPDATE credit_line_matters SET in_use_fen = in_use_fen + ? "
            "WHERE subject_id = ? AND matter = ?",
            (amount, subject, matter),
        ).rowcount
        if moved == 0:
            db.execute(
                "INSERT INTO credit_line_matters (subject_id, matter, in_use_fen) "
                "VALUES (?, ?, ?)",
                (subject, matter, amount),
            )
        db.execute(
            "INSERT INTO credit_waivers (id, code_id, subject_id, provider_id, checked_by, "
            "matter, amount_fen, provider_ref, granted_at, state, bill_fen, billed_at, "
            "due_at, settled_at, paid_late, record_id, version) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, NULL, ?, 'open', NULL, NULL, NULL, NULL, 0, NULL, 1)",
            (str(uuid.uuid4()), code, subject, provider, checker, matter, amount, at),
        )
        db.execute("COMMIT")
    seconds = time.perf_counter() - started
    print(f"FLOOR checks={len(codes)} seconds={seconds:.3f} per_second={len(codes) / seconds:.0f}")


if __name__ == "__main__":
    main()

"""The spool: the one place where what the line acknowledged waits until the database has it.

Call facts, texts in and out and their statuses, opt-outs, press-8 texts, call-backs and sent
marks are all records (`codec`), kept in local append-only segments (`segments`) and written to
the database in batches by each process's spool thread (`spool`, `apply`).

The domain modules register their record types with `codec`, which imports nothing of theirs,
so this package imports nothing at the top: use `service.spool.spool.Spool`.
"""

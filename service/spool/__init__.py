"""The spool: the one place where what the line acknowledged waits until the database has it.

Call facts, texts in and out and their statuses, opt-outs, press-8 texts, call-backs and sent
marks are all records (`codec`), kept in local append-only segments (`segments`) and written to
the database in batches by each process's spool thread (`spool`, `apply`).

The domain modules register their record types with `codec`, which imports nothing of theirs,
so this package imports nothing at the top: use `service.spool.spool.Spool`.

The one exception to "everything goes through the spool thread": an inbound text and the step
of its conversation, when the database answers, are written in the request's own transaction
(`Spool.write(session, records)`, the same record types and stores). The answer to a texter's
next text depends on the step this one took (where they are in the menu, their language), and
Twilio may send it within a second: a batch written later could answer it from the old step.
While the database is away, texts are spooled like everything else.
"""

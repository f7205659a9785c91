"""The API for the clinic's IT (`/api/v1`): tokens (`tokens.py`, `phoneline api-token`), and the
routes (`routes.py`) over lines and revisions (the same code as `phoneline flows`) and the call,
text and follow-up records (the same masking and filters as the dashboard)."""

"""Database helpers shared by the apps (scheduling and operations both insert in bulk)."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal

from django.db import connection, connections

# Bind parameters per INSERT (SQLite allows 32,766; PostgreSQL 65,535).
MAX_INSERT_PARAMS = 30_000


def _json_value(value):
    """A value json.dumps does not know, as PostgreSQL reads it from JSON text."""
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()  # full precision, with the offset of an aware datetime
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    raise TypeError(f"cannot insert a {type(value).__name__} value")


def insert_rows(objs: list) -> None:
    """Insert new model instances of one model in one statement; sets pk and saved state.

    bulk_create without what the engine's and the scheduler's rows do not need (expressions, conflicts,
    per-value preparation): for beat's minute of runs that was half the time of creating
    them. On PostgreSQL the rows travel as one JSON parameter that the server turns into
    rows of the table (json_populate_recordset), so the client neither prepares nor
    parses a placeholder per value (psycopg re-parses any statement of more than 50);
    elsewhere one INSERT ... VALUES per chunk, values through get_db_prep_save as
    bulk_create does. Either way the ids come back in the rows' order, as bulk_create
    also relies on. A test compares what this stores with Model.save().
    """
    if not objs:
        return
    opts = type(objs[0])._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    db = connections[connection.alias]  # the connection itself, not its thread-local proxy
    q = db.ops.quote_name
    table, columns = q(opts.db_table), ", ".join(q(f.column) for f in fields)
    tail = f" RETURNING {q(opts.pk.column)}"
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            pre_saves = [(f.column, f.pre_save) for f in fields]
            rows = [{column: pre_save(obj, True) for column, pre_save in pre_saves} for obj in objs]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} "
                f"FROM json_populate_recordset(NULL::{table}, %s::json){tail}",
                [json.dumps(rows, default=_json_value)],
            )
            _saved(objs, cursor.fetchall(), db)
            return
        head = f"INSERT INTO {table} ({columns}) VALUES "
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        prep = [(f.pre_save, f.get_db_prep_save) for f in fields]
        per = max(1, MAX_INSERT_PARAMS // len(fields))
        for start in range(0, len(objs), per):
            chunk = objs[start : start + per]
            params = [
                db_value(pre_save(obj, True), db) for obj in chunk for pre_save, db_value in prep
            ]
            cursor.execute(head + ", ".join([row] * len(chunk)) + tail, params)
            _saved(chunk, cursor.fetchall(), db)


def _saved(objs: list, ids: list, db) -> None:
    for obj, (pk,) in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = db.alias

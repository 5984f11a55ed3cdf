"""Scheduling's parts below the services: occurrences of agreed cadences
(:mod:`.times`), delivery channels (:mod:`.notify`) and calendars (:mod:`.calendar`).

A schedule is partnership data (:class:`mspflow.store.models.Schedule`); no
APScheduler job store is shared between processes. APScheduler computes the
occurrences and, in the daemon, runs the sweep (:mod:`mspflow.services.sweep`)
at an interval.
"""
